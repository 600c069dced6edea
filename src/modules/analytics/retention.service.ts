import { Injectable } from '@nestjs/common';
import { AnalyticsReader } from './analytics-reader.js';
import { toIso } from '../../common/time.js';
import { EventMatcherDto } from './dto/analytics.dto.js';
import { bucketsCovering, Period, periodStart, periodsFrom, Range } from './time-buckets.js';
import { ACTOR, actorBuckets, matcherSql, num, Params, ratio } from './sql.js';

export interface RetentionRequest {
  start?: EventMatcherDto;
  return?: EventMatcherDto;
  period: Period;
  periods: number;
  range: Range;
  zone: string;
}

/**
 * Cohort retention (METRICS.md): an actor's cohort is the period of their
 * first-ever start event; they are retained in period c+k when they have a
 * return event in it. Cells of periods not yet over are null, not 0.
 */
@Injectable()
export class RetentionService {
  constructor(private readonly database: AnalyticsReader) {}

  async retention(request: RetentionRequest, now = Date.now()) {
    const { period, periods: k, zone } = request;
    // Cohorts are the periods that start in [from, to): a week starting before `from` would
    // count actors first seen before it.
    const cohorts = bucketsCovering(request.range, period, zone).filter(
      (bucket) => bucket.start >= request.range.from,
    );
    if (cohorts.length === 0) return { period, periods: k, tz: zone, cohorts: [] };
    const first = periodStart(cohorts[0].start, period, zone);
    const all = periodsFrom(first, period, cohorts.length + k);
    const values = all.map((b, i) => `(${i}, ${b.start}, ${b.end})`).join(', ');
    const p = new Params();
    // Without matchers (any event starts and returns), first-ever events and the actors
    // of each period come from the per-session rollup instead of every event.
    const firsts = request.start
      ? `SELECT actor, MIN(occurred_at) AS first_at
         FROM (SELECT ${ACTOR} AS actor, occurred_at FROM events WHERE ${matcherSql(request.start, p)}) x
         GROUP BY actor`
      : `SELECT actor, MIN(first_at) AS first_at FROM (
           SELECT ${ACTOR} AS actor, first_at FROM session_summaries
           UNION ALL
           SELECT user_id, occurred_at FROM events WHERE session_id IS NULL AND user_id IS NOT NULL
         ) x GROUP BY actor`;
    const returns = request.return
      ? `returns AS (
         SELECT DISTINCT ${ACTOR} AS actor, periods.d AS r
         FROM events JOIN periods ON events.occurred_at >= periods.s AND events.occurred_at < periods.e
         WHERE ${matcherSql(request.return, p)}
       )`
      : `${actorBuckets(all, 'periods', { postgres: this.database.isPostgres })},
       returns AS (SELECT actor, d AS r FROM actor_buckets)`;
    const rows = await this.database.query<{ c: number; k: number; n: number }>(
      `WITH periods(d, s, e) AS (VALUES ${values}),
       firsts AS (${firsts}),
       cohort AS (
         SELECT f.actor, periods.d AS c FROM firsts f
         JOIN periods ON f.first_at >= periods.s AND f.first_at < periods.e
         WHERE periods.d < ${cohorts.length}
       ),
       ${returns}
       SELECT cohort.c AS c, 0 AS k, COUNT(*) AS n FROM cohort GROUP BY cohort.c
       UNION ALL
       SELECT cohort.c AS c, returns.r - cohort.c AS k, COUNT(DISTINCT cohort.actor) AS n
       FROM cohort JOIN returns ON returns.actor = cohort.actor
         AND returns.r > cohort.c AND returns.r <= cohort.c + ${k}
       GROUP BY cohort.c, returns.r - cohort.c`,
      p.values,
    );
    const cell = new Map(rows.map((r) => [`${num(r.c)}:${num(r.k)}`, num(r.n)]));
    return {
      period,
      periods: k,
      tz: zone,
      cohorts: cohorts.map((cohort, c) => {
        const size = cell.get(`${c}:0`) ?? 0;
        const retained = Array.from({ length: k }, (_, i) => {
          const target = all[c + i + 1];
          return target.end > now ? null : (cell.get(`${c}:${i + 1}`) ?? 0);
        });
        return {
          cohort: cohort.label,
          start: toIso(cohort.start),
          size,
          retained,
          rates: retained.map((n) => (n === null ? null : ratio(n, size))),
        };
      }),
    };
  }

  /**
   * Default cohort range: `periods` cohorts, the current period (its cohort
   * still growing, its cells null) and the `periods - 1` before it.
   */
  static defaultRange(period: Period, periods: number, zone: string, now = Date.now()): Range {
    const current = periodStart(now, period, zone);
    // startOf again: a day a daylight-saving change starts at 01:00 must start there, not at the
    // hour `minus` lands on.
    const from = current.minus({ [`${period}s`]: periods - 1 }).startOf(period);
    return { from: from.toMillis(), to: now };
  }
}
