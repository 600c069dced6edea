/** Epoch milliseconds (storage) to ISO-8601 UTC (wire); null stays null. */
export function toIso(epochMs: number): string;
export function toIso(epochMs: number | null): string | null;
export function toIso(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString();
}
