import { Injectable } from '@nestjs/common';
import { AnalyticsReader } from './analytics-reader.js';
import { PAGE_VIEW_INDEX } from '../tracking/entities/event.entity.js';
import { toIso } from '../../common/time.js';
import { DateTime } from 'luxon';
import { bucketsCovering, periodsFrom, Range } from './time-buckets.js';
import {
  actorsCte,
  actorInPart,
  ACTOR,
  actorBucketPairs,
  ALL_EVENTS,
  apiFilter,
  compareBytes,
  COUNT_ACTORS,
  COUNT_SESSION_ACTORS,
  inRange,
  INTERACTIONS,
  num,
  Params,
  Part,
  ratio,
  seconds,
  sessionlessInRange,
  sessionsInRange,
  SYSTEM_TYPES,
} from './sql.js';
import { EVENT_TYPES } from '../tracking/entities/event.entity.js';
import { COUNT_COLUMN } from '../tracking/session-summaries.js';

export interface SessionStats {
  count: number;
  mean_s: number | null;
  median_s: number | null;
  p90_s: number | null;
  share_zero: number | null;
  bounce_rate: number | null;
}

const SYSTEM_LIST = SYSTEM_TYPES.map((t) => `'${t}'`).join(', ');

/**
 * Counting metrics of METRICS.md, computed in SQL over the indexed events
 * table. Every method reads; none loads a range of events into memory.
 */
@Injectable()
export class AnalyticsService {
  constructor(private readonly database: AnalyticsReader) {}

  private query<T>(sql: string, p: Params): Promise<T[]> {
    return this.database.query<T>(sql, p.values);
  }

  /** The seed's user summary, over all of the user's events. */
  async userSummary(userId: string) {
    const p = new Params();
    const [totals] = await this.query<{
      n: number;
      sessions: number;
      first: number | null;
      last: number | null;
    }>(
      `SELECT COUNT(*) AS n, COUNT(DISTINCT session_id) AS sessions,
              MIN(occurred_at) AS first, MAX(occurred_at) AS last
       FROM events WHERE user_id = ${p.add(userId)}`,
      p,
    );
    const p2 = new Params();
    const breakdown = await this.query<{ type: string; n: number }>(
      `SELECT type, COUNT(*) AS n FROM events WHERE user_id = ${p2.add(userId)} GROUP BY type ORDER BY type`,
      p2,
    );
    const p3 = new Params();
    const [avg] = await this.query<{ mean: number | null }>(
      `SELECT AVG(dur) AS mean FROM (
         SELECT MAX(occurred_at) - MIN(occurred_at) AS dur FROM events
         WHERE user_id = ${p3.add(userId)} AND session_id IS NOT NULL GROUP BY session_id) d`,
      p3,
    );
    return {
      user_id: userId,
      total_activities: num(totals?.n),
      total_sessions: num(totals?.sessions),
      first_activity: totals?.first == null ? null : toIso(Number(totals.first)),
      last_activity: totals?.last == null ? null : toIso(Number(totals.last)),
      avg_session_duration_s: avg?.mean == null ? 0 : seconds(Number(avg.mean)),
      event_breakdown: Object.fromEntries(breakdown.map((r) => [r.type, num(r.n)])),
    };
  }

  /**
   * Distinct actors with an event in `[from, to)`. With every event type
   * counted, from the per-session rollup (one row per session instead of
   * every event of the range); without api_request, from the events.
   */
  async activeActors(range: Range, includeApi = true): Promise<number> {
    const p = new Params();
    const [row] = await this.query<{ n: number }>(
      includeApi
        ? `WITH ${sessionsInRange(p, range)}, ${sessionlessInRange(p, range)}, ${actorsCte()}
           SELECT ${COUNT_SESSION_ACTORS} AS n FROM actors`
        : `SELECT ${COUNT_ACTORS} AS n FROM events
           WHERE ${inRange(p, range.from, range.to)} AND ${apiFilter(false)}`,
      p,
    );
    return num(row?.n);
  }

  /**
   * DAU, WAU (d-6..d), MAU (d-29..d) and stickiness per local day of
   * `range`. `whole`: one query, not parts side by side (see queryParts),
   * for a caller that keeps both readers busy with other queries anyway.
   */
  async activeSeries(range: Range, zone: string, includeApi = true, options = { whole: false }) {
    const days = bucketsCovering(range, 'day', zone);
    if (days.length === 0) return [];
    // Actor-days from 29 days before the first day, for the rolling windows. The bucket
    // bounds are computed numbers, inlined as literals (PostgreSQL cannot type VALUES params).
    const lookback = periodsFrom(
      DateTime.fromMillis(days[0].start, { zone }).minus({ days: 29 }),
      'day',
      days.length + 29,
    );
    const values = lookback.map((d, i) => `(${i}, ${d.start}, ${d.end})`).join(', ');
    const firstIndex = 29;
    // Rolling windows without joining every day to every actor-day in its window: each
    // actor-day covers days d..d+W-1 of a W-day window, and consecutive days of an actor are
    // merged (coverage starts after the previous one ends). So, with `prev` the actor's
    // previous active day, adding +1 at max(d, prev + W) and -1 at d + W, and summing in
    // day order, counts every actor once per window. An actor-day that repeats (two
    // sessions that day) has prev = d: its +1 and -1 fall on the same day, and it is not
    // counted again in DAU. SQL only counts the (d, prev) pairs (at most one row per pair
    // of days); the sums run here: three GROUP BYs over every actor-day cost about a third
    // of the query on the 1M-event benchmark.
    // The SQL of one part of the actors (all of them without `part`): parts run side by side,
    // and each actor is in one part, so the parts' counts add up.
    const build = (part?: Part) => ({
      sql: includeApi
        ? // From the rollup (see actorBucketPairs).
          `WITH days(d, s, e) AS (VALUES ${values}),
           ${actorBucketPairs(lookback, 'days', { postgres: this.database.isPostgres, part })}`
        : // Without api_request, from the events.
          `WITH days(d, s, e) AS (VALUES ${values}),
             actor_days AS (
               SELECT DISTINCT ${ACTOR} AS actor, days.d AS d
               FROM events JOIN days ON events.occurred_at >= days.s AND events.occurred_at < days.e
               WHERE ${apiFilter(false, 'events.')} AND ${actorInPart(part, 'events.')}
             ),
             lagged AS (SELECT d, LAG(d) OVER (PARTITION BY actor ORDER BY d) AS prev FROM actor_days)
             SELECT d, prev, COUNT(*) AS n FROM lagged GROUP BY d, prev`,
      params: [],
    });
    type Pairs = { d: number; prev: number | null; n: number };
    const rows = options.whole
      ? await this.database.query<Pairs>(build().sql, [])
      : (await this.database.queryParts<Pairs>(build)).flat();
    const dau = new Array<number>(lookback.length).fill(0);
    const delta = { wau: new Map<number, number>(), mau: new Map<number, number>() };
    const add = (counts: Map<number, number>, at: number, n: number) =>
      counts.set(at, (counts.get(at) ?? 0) + n);
    for (const row of rows) {
      const [d, n] = [Number(row.d), num(row.n)];
      const prev = row.prev === null ? null : Number(row.prev);
      if (prev === null || prev < d) dau[d] += n;
      for (const [window, counts] of [
        [7, delta.wau],
        [30, delta.mau],
      ] as const) {
        add(counts, prev === null || prev + window <= d ? d : prev + window, n);
        add(counts, d + window, -n);
      }
    }
    const running = { wau: 0, mau: 0 };
    const result = [];
    for (let d = 0; d < lookback.length; d++) {
      running.wau += delta.wau.get(d) ?? 0;
      running.mau += delta.mau.get(d) ?? 0;
      if (d < firstIndex) continue;
      result.push({
        date: lookback[d].label,
        dau: dau[d],
        wau: running.wau,
        mau: running.mau,
        stickiness: ratio(dau[d], running.mau),
      });
    }
    return result;
  }

  /** Actors active in the last 5 minutes and events per minute over the last 30. */
  async realtime(now = Date.now()) {
    const minute = 60_000;
    const end = Math.floor(now / minute) * minute + minute;
    const start = end - 30 * minute;
    const p = new Params();
    // `start` inlined as an integer literal: better-sqlite3 binds numbers as REAL, which
    // made the division fractional and grouped the events by millisecond, not by minute.
    const perMinute = await this.query<{ m: number; n: number }>(
      `SELECT (occurred_at - ${Math.trunc(start)}) / ${minute} AS m, COUNT(*) AS n FROM events
       WHERE ${inRange(p, start, end)} GROUP BY 1`,
      p,
    );
    const counts = new Map(perMinute.map((r) => [Number(r.m), num(r.n)]));
    return {
      active_users: await this.activeActors({ from: now - 5 * minute, to: now + 1 }),
      events_per_minute: Array.from({ length: 30 }, (_, i) => ({
        minute: toIso(start + i * minute),
        events: counts.get(i) ?? 0,
      })),
    };
  }

  /**
   * Popular pages: views, visitors, entries, exits and exit rate per
   * normalised path. Views and visitors count page views; entries and exits
   * come from the sessions' first and last page views in the range.
   */
  async pages(range: Range, limit: number) {
    const p = new Params();
    const q = new Params();
    // SQLite is told to use the page-view index (see migration 0006): without
    // statistics from ANALYZE its planner keeps the (type, occurred_at) index, 3x
    // slower here. PostgreSQL's planner has statistics (autovacuum) and picks itself.
    const pageViews = this.database.isPostgres ? 'events' : `events INDEXED BY ${PAGE_VIEW_INDEX}`;
    // Two independent queries, side by side in the reader's two workers on SQLite.
    const [top, ends] = await Promise.all([
      this.query<{ path: string; views: number; visitors: number }>(
        `SELECT path, COUNT(*) AS views, ${COUNT_ACTORS} AS visitors FROM ${pageViews}
         WHERE type = 'page_view' AND ${inRange(p, range.from, range.to)}
         GROUP BY path ORDER BY COUNT(*) DESC, path${this.database.byteOrder} ASC
         LIMIT ${p.add(limit)}`,
        p,
      ),
      // One pass over the sessions, counted by (entry, exit) pair; then the pairs (far fewer
      // rows) by entry and by exit. Grouped by entry and by exit straight from `per_session`,
      // SQLite stored the sessions in a temporary table first to read them twice.
      this.query<{ kind: 'entry' | 'exit'; path: string; n: number }>(
        `WITH ${sessionsInRange(q, range, { readOnce: true })},
         pairs AS (
           SELECT entry_path, exit_path, COUNT(*) AS n FROM per_session GROUP BY entry_path, exit_path
         )
         SELECT 'entry' AS kind, entry_path AS path, SUM(n) AS n FROM pairs
         WHERE entry_path IS NOT NULL GROUP BY entry_path
         UNION ALL
         SELECT 'exit' AS kind, exit_path AS path, SUM(n) AS n FROM pairs
         WHERE exit_path IS NOT NULL GROUP BY exit_path`,
        q,
      ),
    ]);
    const count = new Map(ends.map((r) => [`${r.kind}:${r.path}`, num(r.n)]));
    return top.map((r) => {
      const exits = count.get(`exit:${r.path}`) ?? 0;
      return {
        page: r.path,
        views: num(r.views),
        visitors: num(r.visitors),
        entries: count.get(`entry:${r.path}`) ?? 0,
        exits,
        exit_rate: ratio(exits, num(r.views)),
      };
    });
  }

  /**
   * Session durations (last - first event in range) and bounce rate, in one
   * pass: per-session figures, ranked once for the median (mean of the two
   * middle values for an even count) and p90 (nearest rank). With every
   * event type counted (the default) the figures come from the per-session
   * rollup; without api_request, from the events.
   */
  async sessionStats(range: Range, includeApi = true): Promise<SessionStats> {
    return (await this.sessionFigures(range, includeApi, false)).stats;
  }

  /**
   * Session statistics and, with `withTotals` (every event type counted),
   * the range's events, page views, actors and sessions from the same pass
   * over `per_session`.
   */
  private async sessionFigures(range: Range, includeApi: boolean, withTotals: boolean) {
    const p = new Params();
    // The figures are read several times (the statistics, the rank, the totals), so SQLite
    // stores them in a temporary table: only the columns used here, not all of `per_session`
    // (which is then read once). `anonymous` (1 for a session without a user) stands in for
    // the session id in the actor count, which needs no distinct count for sessions. The
    // overview's query took 15-20% less time on the 1M-event benchmark.
    const perSession = includeApi
      ? `${sessionsInRange(p, range, { readOnce: true })},
       session_figures AS MATERIALIZED (
         SELECT user_id, CASE WHEN user_id IS NULL THEN 1 END AS anonymous,
           last_at - first_at AS dur, ${ALL_EVENTS} AS events, page_views AS pv,
           ${INTERACTIONS} AS other
         FROM per_session
       )`
      : `session_figures AS (
         SELECT MAX(occurred_at) - MIN(occurred_at) AS dur,
           SUM(CASE WHEN type = 'page_view' THEN 1 ELSE 0 END) AS pv,
           SUM(CASE WHEN type NOT IN ('page_view', ${SYSTEM_LIST}) THEN 1 ELSE 0 END) AS other
         FROM events
         WHERE session_id IS NOT NULL AND ${inRange(p, range.from, range.to)} AND ${apiFilter(false)}
         GROUP BY session_id
       )`;
    // Plain aggregates for the counts and the mean, and one window (the rank) for the
    // median and p90: six OVER () windows over the same rows cost about a fifth of the
    // overview's time on the 1M-event benchmark.
    const ranks = `stats AS (
         SELECT COUNT(*) AS n, AVG(dur) AS mean,
           SUM(CASE WHEN dur = 0 THEN 1 ELSE 0 END) AS zeros,
           SUM(CASE WHEN pv > 0 THEN 1 ELSE 0 END) AS with_pv,
           SUM(CASE WHEN pv = 1 AND other = 0 THEN 1 ELSE 0 END) AS bounces
         FROM session_figures
       ),
       ranked AS (SELECT dur, ROW_NUMBER() OVER (ORDER BY dur) AS rn FROM session_figures),
       picked AS (
         SELECT n, mean, zeros, with_pv, bounces, rn, dur FROM stats JOIN ranked
         ON rn = (n + 1) / 2 OR rn = (n + 2) / 2 OR rn = (9 * n + 9) / 10
       )`;
    // The totals row is there even when no session is (LEFT JOIN).
    const select = withTotals
      ? `, ${sessionlessInRange(p, range)},
       ${actorsCte('session_figures', 'anonymous')},
       totals AS (
         SELECT
           (SELECT COALESCE(SUM(events), 0) FROM session_figures) + (SELECT COUNT(*) FROM sessionless) AS events,
           (SELECT COALESCE(SUM(pv), 0) FROM session_figures)
             + (SELECT COUNT(*) FROM sessionless WHERE type = 'page_view') AS page_views,
           (SELECT ${COUNT_SESSION_ACTORS} FROM actors) AS actors,
           (SELECT COUNT(*) FROM session_figures) AS sessions
       )
       SELECT totals.*, picked.* FROM totals LEFT JOIN picked ON 1 = 1`
      : ' SELECT * FROM picked';
    const rows = await this.query<{
      n: number | null;
      mean: number | null;
      zeros: number | null;
      with_pv: number | null;
      bounces: number | null;
      rn: number | null;
      dur: number | null;
      events?: number;
      page_views?: number;
      actors?: number;
      sessions?: number;
    }>(`WITH ${perSession}, ${ranks}${select}`, p);
    const first = rows[0];
    const totals = withTotals
      ? {
          events: num(first?.events),
          page_views: num(first?.page_views),
          active_users: num(first?.actors),
          sessions: num(first?.sessions),
        }
      : undefined;
    if (!first || first.n === null) {
      const empty: SessionStats = {
        count: 0,
        mean_s: null,
        median_s: null,
        p90_s: null,
        share_zero: null,
        bounce_rate: null,
      };
      return { stats: empty, totals };
    }
    const count = num(first.n);
    const at = (rank: number) => num(rows.find((r) => num(r.rn) === rank)?.dur);
    const median = (at(Math.floor((count + 1) / 2)) + at(Math.floor((count + 2) / 2))) / 2;
    const stats: SessionStats = {
      count,
      mean_s: seconds(Number(first.mean)),
      median_s: seconds(median),
      p90_s: seconds(at(Math.floor((9 * count + 9) / 10))),
      share_zero: ratio(num(first.zeros), count),
      bounce_rate: ratio(num(first.bounces), num(first.with_pv)),
    };
    return { stats, totals };
  }

  /**
   * The overview's figures without api_request events: from the events (the
   * rollup counts every type). Sessions are those with another event in the
   * range, as in sessionStats(range, false).
   */
  private async figuresWithoutApi(range: Range) {
    const p = new Params();
    const [[counts], { stats }, actors] = await Promise.all([
      this.query<{ events: number; page_views: number | null }>(
        `SELECT COUNT(*) AS events, SUM(CASE WHEN type = 'page_view' THEN 1 ELSE 0 END) AS page_views
         FROM events WHERE ${inRange(p, range.from, range.to)} AND ${apiFilter(false)}`,
        p,
      ),
      this.sessionFigures(range, false, false),
      this.activeActors(range, false),
    ]);
    return {
      stats,
      totals: {
        events: num(counts?.events),
        page_views: num(counts?.page_views),
        active_users: actors,
        sessions: stats.count,
      },
    };
  }

  /** Per event type, and per action name: events, actors, sessions. */
  async breakdown(range: Range, includeApi = true) {
    const p = new Params();
    const q = new Params();
    const types = EVENT_TYPES.filter((type) => includeApi || type !== 'api_request');
    // Per type from the per-session rollup (with sessionless events as rows of one event):
    // a session is one row, so its type's sessions are counted without DISTINCT. Grouped by
    // user first, with a column per type: a user is an actor of a type when any of their
    // rows has it, and each anonymous session is an actor of its own. One sort by user
    // instead of a distinct count per type (15-20% less time on the 1M-event benchmark).
    const perUser = types
      .map((type) => {
        const c = COUNT_COLUMN[type];
        return `SUM(${c}) AS ${c}, COUNT(CASE WHEN ${c} > 0 THEN session_id END) AS ${c}_sessions,
             MAX(CASE WHEN ${c} > 0 THEN 1 ELSE 0 END) AS ${c}_seen`;
      })
      .join(',\n             ');
    const perType = types
      .map((type) => {
        const c = COUNT_COLUMN[type];
        return `SUM(${c}) AS "${type}:events",
           SUM(CASE WHEN user_id IS NULL THEN ${c}_sessions ELSE ${c}_seen END) AS "${type}:actors",
           SUM(${c}_sessions) AS "${type}:sessions"`;
      })
      .join(',\n           ');
    const sessionlessCounts = types
      .map((type) => `CASE WHEN type = '${type}' THEN 1 ELSE 0 END AS ${COUNT_COLUMN[type]}`)
      .join(', ');
    // Independent queries: on SQLite they run side by side in the reader's two workers.
    const [[totals], byAction] = await Promise.all([
      this.query<Record<string, number | string | null>>(
        `WITH ${sessionsInRange(p, range)}, ${sessionlessInRange(p, range)},
         rows_of AS (
           SELECT user_id, session_id, ${types.map((t) => COUNT_COLUMN[t]).join(', ')} FROM per_session
           UNION ALL SELECT user_id, NULL, ${sessionlessCounts} FROM sessionless
           WHERE ${apiFilter(includeApi)}
         ),
         per_user AS (SELECT user_id, ${perUser} FROM rows_of GROUP BY user_id)
         SELECT ${perType} FROM per_user`,
        p,
      ),
      this.query<{ name: string; events: number; actors: number; sessions: number }>(
        `SELECT name, COUNT(*) AS events, ${COUNT_ACTORS} AS actors, COUNT(DISTINCT session_id) AS sessions
         FROM events WHERE type = 'action' AND ${inRange(q, range.from, range.to)}
         GROUP BY name ORDER BY COUNT(*) DESC, name${this.database.byteOrder} ASC`,
        q,
      ),
    ]);
    const item = (
      type: string,
      name: string | null,
      r: { events: unknown; actors: unknown; sessions: unknown },
    ) => ({
      type,
      name,
      events: num(r.events),
      actors: num(r.actors),
      sessions: num(r.sessions),
    });
    const byType = types
      .map((type) =>
        item(type, null, {
          events: totals?.[`${type}:events`],
          actors: totals?.[`${type}:actors`],
          sessions: totals?.[`${type}:sessions`],
        }),
      )
      .filter((r) => r.events > 0)
      // Most events first, then the type in byte order (as the per-name rows sort in SQL).
      .sort((a, b) => b.events - a.events || compareBytes(a.type, b.type));
    return [...byType, ...byAction.map((r) => item('action', r.name, r))];
  }

  /** The headline numbers of a range beside those of the period of equal length before it. */
  async overview(range: Range, includeApi = true) {
    return (await this.overviewWithSessions(range, includeApi)).overview;
  }

  /**
   * The overview, and the range's session statistics (sessionStats), which
   * the overview computes anyway: the system report needs both.
   */
  async overviewWithSessions(range: Range, includeApi = true) {
    const previous = { from: range.from - (range.to - range.from), to: range.from };
    const measure = (r: Range) =>
      includeApi ? this.sessionFigures(r, true, true) : this.figuresWithoutApi(r);
    const [now, then] = await Promise.all([measure(range), measure(previous)]);
    const headline = ({ stats, totals }: typeof now) => ({
      ...totals!,
      mean_session_duration_s: stats.mean_s,
      median_session_duration_s: stats.median_s,
      bounce_rate: stats.bounce_rate,
    });
    const [current, before] = [headline(now), headline(then)];
    const metrics = Object.fromEntries(
      (Object.keys(current) as (keyof typeof current)[]).map((key) => [
        key,
        { value: current[key], previous: before[key] },
      ]),
    ) as Record<keyof typeof current, { value: number | null; previous: number | null }>;
    return {
      overview: {
        from: toIso(range.from),
        to: toIso(range.to),
        previous_from: toIso(previous.from),
        previous_to: toIso(previous.to),
        metrics,
      },
      sessions: now.stats,
    };
  }
}
