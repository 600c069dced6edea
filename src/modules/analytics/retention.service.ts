import { Injectable } from '@nestjs/common';
import { DateTime } from 'luxon';
import { AnalyticsReader } from './analytics-reader.js';
import { toIso } from '../../common/time.js';
import { EventMatcherDto } from './dto/analytics.dto.js';
import { bucketsCovering, Period, periodStart, periodsFrom, Range } from './time-buckets.js';
import { ACTOR, matcherSql, num, Params, ratio } from './sql.js';

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
    const cohorts = bucketsCovering(request.range, period, zone);
    const first = periodStart(cohorts[0].start, period, zone);
    const all = periodsFrom(first, period, cohorts.length + k);
    const values = all.map((b, i) => `(${i}, ${b.start}, ${b.end})`).join(', ');
    const p = new Params();
    const startMatch = request.start ? matcherSql(request.start, p) : '1 = 1';
    const returnMatch = request.return ? matcherSql(request.return, p) : '1 = 1';
    const rows = await this.database.query<{ c: number; k: number; n: number }>(
      `WITH periods(i, s, e) AS (VALUES ${values}),
       firsts AS (
         SELECT actor, MIN(occurred_at) AS first_at
         FROM (SELECT ${ACTOR} AS actor, occurred_at FROM events WHERE ${startMatch}) x GROUP BY actor
       ),
       cohort AS (
         SELECT f.actor, periods.i AS c FROM firsts f
         JOIN periods ON f.first_at >= periods.s AND f.first_at < periods.e
         WHERE periods.i < ${cohorts.length}
       ),
       returns AS (
         SELECT DISTINCT ${ACTOR} AS actor, periods.i AS r
         FROM events JOIN periods ON events.occurred_at >= periods.s AND events.occurred_at < periods.e
         WHERE ${returnMatch}
       )
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

  /** Default cohort range: the last `periods` whole periods up to now. */
  static defaultRange(period: Period, periods: number, zone: string, now = Date.now()): Range {
    const end = DateTime.fromMillis(now, { zone });
    return { from: end.minus({ [`${period}s`]: periods }).toMillis(), to: now };
  }
}
