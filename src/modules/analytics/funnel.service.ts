import { Injectable } from '@nestjs/common';
import { AnalyticsReader } from './analytics-reader.js';
import { EventMatcherDto } from './dto/analytics.dto.js';
import { Range } from './time-buckets.js';
import { actorOf, matcherSql, num, Params, ratio, seconds } from './sql.js';

export interface FunnelRequest {
  steps: EventMatcherDto[];
  windowMs: number;
  unit: 'user' | 'session';
  range: Range;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor((sorted.length - 1) / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid] + sorted[mid + 1]) / 2;
}

/**
 * Ordered funnels exactly as METRICS.md defines them: every step-1 event in
 * range starts an attempt; step k is the earliest event strictly after step
 * k-1's event in (occurred_at, id) order, matching step k, within the window
 * from step 1. Each unit counts with its furthest attempt (ties: earliest).
 */
@Injectable()
export class FunnelService {
  constructor(private readonly database: AnalyticsReader) {}

  async funnel(request: FunnelRequest) {
    const { steps, windowMs, unit, range } = request;
    const p = new Params();
    const unitOf = (alias: string) => (unit === 'session' ? `${alias}session_id` : actorOf(alias));
    // The next matching event of the same unit: by user id (index on user_id, occurred_at),
    // or for anonymous actors and session funnels by session (index on session_id, occurred_at).
    const sameUnit = (a: string) =>
      unit === 'session'
        ? `e.session_id = ${a}.sid`
        : `((${a}.uid IS NOT NULL AND e.user_id = ${a}.uid) OR (${a}.uid IS NULL AND e.user_id IS NULL AND e.session_id = ${a}.sid))`;

    // SQLite: the events that can fill steps 2..n are collected once (few compared with all
    // events), and each probe searches them through an automatic index on (unit, step);
    // probing the events table walked every later event of the unit (4x slower here).
    // PostgreSQL cannot index a CTE, so its probes use the table's indexes.
    const candidates = !this.database.isPostgres;
    const ctes: string[] = [];
    if (candidates) {
      const flags = steps
        .slice(1)
        .map((step, i) => `CASE WHEN ${matcherSql(step, p)} THEN 1 ELSE 0 END AS m${i + 2}`)
        .join(', ');
      // The candidates of each later step, one index search per step. Not one WHERE with the
      // steps ORed together: SQLite 3.53 fails such a statement with "internal query planner
      // error" when one step is a bare type and another a page_view with a page (the partial
      // page-view index), so those funnels answered 500 on SQLite only.
      const perStep = steps
        .slice(1)
        .map(
          (step) =>
            `SELECT id FROM events WHERE ${matcherSql(step, p)} AND occurred_at >= ${p.add(range.from)} AND occurred_at <= ${p.add(range.to + windowMs)}`,
        )
        .join(' UNION ALL ');
      ctes.push(`cand AS MATERIALIZED (
        SELECT ${unitOf('')} AS unit, id, occurred_at, ${flags} FROM events
        WHERE id IN (${perStep})
      )`);
    }
    ctes.push(`a1 AS (
        SELECT ${unitOf('')} AS unit, user_id AS uid, session_id AS sid, id AS id1, occurred_at AS t1
        FROM events WHERE ${matcherSql(steps[0], p)} AND occurred_at >= ${p.add(range.from)} AND occurred_at < ${p.add(range.to)}
          AND session_id IS NOT NULL
      )`);
    const nextEvent = (k: number, prev: string) =>
      candidates
        ? `SELECT c.id FROM cand c
          WHERE c.unit = ${prev}.unit AND c.m${k} = 1
            AND (c.occurred_at > ${prev}.t${k - 1} OR (c.occurred_at = ${prev}.t${k - 1} AND c.id > ${prev}.id${k - 1}))
            AND c.occurred_at <= ${prev}.t1 + ${p.add(windowMs)}
          ORDER BY c.occurred_at, c.id LIMIT 1`
        : `SELECT e.id FROM events e
          WHERE ${sameUnit(prev)} AND ${matcherSql(steps[k - 1], p, 'e.')}
            AND (e.occurred_at > ${prev}.t${k - 1} OR (e.occurred_at = ${prev}.t${k - 1} AND e.id > ${prev}.id${k - 1}))
            AND e.occurred_at <= ${prev}.t1 + ${p.add(windowMs)}
          ORDER BY e.occurred_at, e.id LIMIT 1`;
    for (let k = 2; k <= steps.length; k++) {
      const prev = `a${k - 1}`;
      // CASE: an attempt that stopped at step k-1 looks no further. MATERIALIZED: each
      // probe runs once per attempt (inlined, every later reference to id<k> re-ran it).
      ctes.push(`${prev}n AS MATERIALIZED (
        SELECT ${prev}.*, CASE WHEN ${prev}.id${k - 1} IS NULL THEN NULL ELSE (${nextEvent(k, prev)}) END AS id${k}
        FROM ${prev}
      )`);
      ctes.push(`a${k} AS (
        SELECT ${prev}n.*, e.occurred_at AS t${k} FROM ${prev}n LEFT JOIN events e ON e.id = ${prev}n.id${k}
      )`);
    }
    const last = `a${steps.length}`;
    const reached = `CASE ${steps
      .map((_, i) => steps.length - i)
      .filter((k) => k > 1)
      .map((k) => `WHEN ${last}.id${k} IS NOT NULL THEN ${k}`)
      .join(' ')} ELSE 1 END`;
    const times = steps.map((_, i) => `${last}.t${i + 1} AS s${i + 1}`).join(', ');
    const rows = await this.database.query<Record<string, number | string | null>>(
      `WITH ${ctes.join(',\n')},
       attempts AS (SELECT ${last}.unit, ${last}.id1, ${last}.t1 AS start_at, ${reached} AS reached, ${times} FROM ${last}),
       ranked AS (
         SELECT attempts.*, ROW_NUMBER() OVER (PARTITION BY unit ORDER BY reached DESC, start_at ASC, id1 ASC) AS rn
         FROM attempts
       )
       SELECT * FROM ranked WHERE rn = 1`,
      p.values,
    );

    const counts = steps.map((_, i) => rows.filter((r) => num(r.reached) >= i + 1).length);
    return {
      unit,
      window_s: windowMs / 1000,
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
      steps: steps.map((step, i) => {
        const count = counts[i];
        const previous = i === 0 ? count : counts[i - 1];
        const gaps =
          i === 0
            ? []
            : rows
                .filter((r) => num(r.reached) >= i + 1)
                .map((r) => num(r[`s${i + 1}`]) - num(r[`s${i}`]));
        const medianGap = median(gaps);
        return {
          step: i + 1,
          type: step.type,
          name: step.name ?? null,
          page: step.page ?? null,
          count,
          conversion_from_start: ratio(count, counts[0]),
          conversion_from_previous: i === 0 ? ratio(count, count) : ratio(count, previous),
          dropped: i === 0 ? 0 : previous - count,
          median_time_from_previous_s: medianGap === null ? null : seconds(medianGap),
        };
      }),
    };
  }
}
