import Database from 'better-sqlite3';
import { DateTime } from 'luxon';
import { bucketOf, ratio, shareOf } from './sql';
import { periodsFrom } from './time-buckets';

describe('ratio and shareOf', () => {
  it('divides, and gives null for a zero divisor', () => {
    expect([ratio(1, 4), ratio(0, 3), ratio(2, 0)]).toEqual([0.25, 0, null]);
  });

  it('caps a share at 1 when the part was counted after the whole grew apart from it', () => {
    expect([shareOf(3, 4), shareOf(5, 4), shareOf(4, 4), shareOf(1, 0)]).toEqual([
      0.75,
      1,
      1,
      null,
    ]);
  });
});

describe('bucketOf', () => {
  const db = new Database(':memory:');
  afterAll(() => db.close());
  /** [index, end] of each time, as SQLite computes them for an INTEGER column (a number binds as REAL). */
  const locate = (buckets: { start: number; end: number }[], times: number[]) => {
    const { index, end } = bucketOf(buckets, 'first_at');
    const statement = db.prepare(
      `SELECT ${index} AS i, ${end} AS e FROM (SELECT CAST(? AS INTEGER) AS first_at)`,
    );
    return times.map((time) => {
      const row = statement.get(time) as { i: number; e: number };
      return [row.i, row.e];
    });
  };
  const expectBuckets = (buckets: { start: number; end: number }[]) => {
    const times = buckets.flatMap((b) => [b.start, Math.floor((b.start + b.end) / 2), b.end - 1]);
    const expected = buckets.flatMap((b, i) => [0, 1, 2].map(() => [i, b.end]));
    expect(locate(buckets, times)).toEqual(expected);
  };

  it('finds the bucket of equal days by arithmetic alone', () => {
    const days = periodsFrom(DateTime.fromISO('2026-01-30T00:00:00Z', { zone: 'UTC' }), 'day', 60);
    expect(bucketOf(days, 'first_at').index).not.toContain('CASE');
    expectBuckets(days);
  });

  it('finds local days across daylight-saving changes, one arm per run of equal days', () => {
    // Berlin: 23 hours on 2025-03-30, 25 on 2025-10-26.
    const days = periodsFrom(DateTime.fromISO('2025-03-01', { zone: 'Europe/Berlin' }), 'day', 250);
    expect(bucketOf(days, 'first_at').index.match(/WHEN/g)).toHaveLength(4);
    expectBuckets(days);
    // Santiago: 2026-09-06 starts at 01:00 (a day of 23 hours).
    expectBuckets(
      periodsFrom(DateTime.fromISO('2026-08-30', { zone: 'America/Santiago' }), 'day', 20),
    );
  });

  it('finds weeks and months', () => {
    expectBuckets(
      periodsFrom(DateTime.fromISO('2025-01-06', { zone: 'Europe/Berlin' }), 'week', 60),
    );
    expectBuckets(periodsFrom(DateTime.fromISO('2024-01-01', { zone: 'UTC' }), 'month', 26));
  });
});
