import { boundedMemo } from './bounded-memo.js';

/**
 * Recently formatted times. The session check formats the same six times
 * of a session on every request, and toISOString costs about 0.7 µs each.
 */
const isoOf = boundedMemo((epochMs: number) => new Date(epochMs).toISOString(), 4096);

/** Epoch milliseconds (storage) to ISO-8601 UTC (wire); null stays null. */
export function toIso(epochMs: number): string;
export function toIso(epochMs: number | null): string | null;
export function toIso(epochMs: number | null): string | null {
  return epochMs === null ? null : isoOf(epochMs);
}
