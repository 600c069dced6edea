import { DateTime, IANAZone } from 'luxon';
import { assertRangeOrder } from '../../common/dto/time-range.dto.js';
import { invalidField } from '../../common/validation/invalid-field.js';

export const MAX_RANGE_DAYS = 400;
const DAY_MS = 86_400_000;

export interface Range {
  from: number;
  to: number;
}

/** `[from, to)` from ISO strings; default the last 30 days; at most 400 days. */
export function resolveRange(
  input: { from?: string; to?: string },
  now = Date.now(),
  defaultDays = 30,
): Range {
  const to = input.to ? Date.parse(input.to) : now;
  const from = input.from ? Date.parse(input.from) : to - defaultDays * DAY_MS;
  assertRangeOrder(from, to);
  if (to - from > MAX_RANGE_DAYS * DAY_MS) {
    throw invalidField(
      'from',
      `must be at most ${MAX_RANGE_DAYS} days before to`,
      `The range may span at most ${MAX_RANGE_DAYS} days`,
    );
  }
  return { from, to };
}

export function resolveZone(tz: string | undefined): string {
  if (tz === undefined) return 'UTC';
  if (!IANAZone.isValidZone(tz))
    throw invalidField('tz', 'must be an IANA time zone', `tz "${tz}" is not an IANA time zone`);
  return tz;
}

export type Period = 'day' | 'week' | 'month';

export interface Bucket {
  /** Local date of the bucket's start, e.g. `2026-11-02`. */
  label: string;
  start: number;
  end: number;
}

/** Start of the period (ISO weeks start on Monday) containing `at`, in `zone`. */
export function periodStart(at: number, period: Period, zone: string): DateTime {
  return DateTime.fromMillis(at, { zone }).startOf(period === 'week' ? 'week' : period);
}

/** Consecutive periods from the one containing `from` up to the one containing `to - 1`. */
export function bucketsCovering(range: Range, period: Period, zone: string): Bucket[] {
  const first = periodStart(range.from, period, zone);
  const buckets: Bucket[] = [];
  for (let i = 0; ; i++) {
    const [bucket] = periodsFrom(first, period, 1, i);
    if (bucket.start >= range.to) return buckets;
    buckets.push(bucket);
  }
}

/**
 * `n` consecutive periods, from the one containing `start` (skipping the
 * first `offset`). Each starts at the start of its period, taken afresh,
 * and ends where the next starts. Stepping from the previous start instead
 * went wrong where a daylight-saving change skips midnight (America/Santiago,
 * Atlantic/Azores): that day starts at 01:00, and every later day began at
 * 01:00 too, an hour late.
 */
export function periodsFrom(start: DateTime, period: Period, n: number, offset = 0): Bucket[] {
  const unit = `${period}s`;
  const startOf = (i: number) => start.plus({ [unit]: i }).startOf(period);
  return Array.from({ length: n }, (_, i) => {
    const s = startOf(offset + i);
    return { label: s.toISODate()!, start: s.toMillis(), end: startOf(offset + i + 1).toMillis() };
  });
}
