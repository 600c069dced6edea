import type { EventMatcherDto } from './dto/analytics.dto.js';
import { EVENT_TYPES } from '../tracking/entities/event.entity.js';
import { encodePathText, normalizePagePath } from '../tracking/page-path.js';
import { COUNT_COLUMN, COUNT_COLUMNS, PATH_ITEM_OF } from '../tracking/session-summaries.js';
export { PATH_ITEM } from '../tracking/session-summaries.js';
import type { Range } from './time-buckets.js';

/** Collects positional parameters while SQL text is built left to right. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return '?';
  }
}

/**
 * One of `count` disjoint parts of the actors or sessions a query covers
 * (AnalyticsReader.queryParts runs the parts side by side).
 */
export interface Part {
  index: number;
  count: number;
}

/**
 * SQL condition: text `key` falls in `part` (always true without parts).
 * Keys are split by their last character: ids are random UUIDs, so the parts
 * come out even, and every key, NULL included (part 0), is in exactly one
 * part, so per-part distinct counts add up. SQLite only (`unicode`); the
 * reader splits queries only there.
 */
export function inPart(key: string, part?: Part): string {
  if (!part || part.count === 1) return '1 = 1';
  return `COALESCE(unicode(substr(${key}, -1)), 0) % ${part.count} = ${part.index}`;
}

/** The part an actor falls in, from its user_id and session_id columns (see actorOf). */
export const actorInPart = (part?: Part, alias = ''): string =>
  inPart(`COALESCE(${alias}user_id, ${alias}session_id)`, part);

/**
 * Who an event belongs to: the user, or for a session that never logged in,
 * the session itself (it is a distinct visitor until identity stitching
 * gives its events a user id).
 */
export const actorOf = (alias = ''): string =>
  `COALESCE(${alias}user_id, 's:' || ${alias}session_id)`;
export const ACTOR = actorOf();

/**
 * COUNT(DISTINCT actor) without building the actor string per row: the user
 * id, or the session id for an event without a user. Both are random UUIDs
 * the service generates (users and sessions), so no session id is a user id
 * and one distinct count is exact. It needs one temporary B-tree where a
 * distinct count of users plus one of anonymous sessions needed two (popular
 * pages: 15-17% less time on the 1M-event benchmark).
 */
export const COUNT_ACTORS = 'COUNT(DISTINCT COALESCE(user_id, session_id))';

/**
 * COUNT_ACTORS over rows where each session id appears at most once (rows of
 * `per_session`, or of it per group, with sessionless rows): an anonymous
 * session is then one row, and only the user ids need a distinct count (a
 * sort) instead of both.
 */
export const COUNT_SESSION_ACTORS =
  'COUNT(DISTINCT user_id) + COUNT(CASE WHEN user_id IS NULL THEN session_id END)';

/** Events the server records by itself; `include_api=false` leaves out api_request. */
export const SYSTEM_TYPES = ['api_request', 'login', 'logout'];

/** `per_session` columns: events of every type. */
export const ALL_EVENTS = COUNT_COLUMNS.join(' + ');

/** `per_session` columns: events that are neither page views nor system events (for bounces). */
export const INTERACTIONS = EVENT_TYPES.filter(
  (t) => t !== 'page_view' && !SYSTEM_TYPES.includes(t),
)
  .map((type) => COUNT_COLUMN[type])
  .join(' + ');

/**
 * CTEs ending in `per_session`: one row per session with an event in the
 * range, with what its events in the range add up to (session_id, user_id,
 * first_at, last_at, a count per event type, entry_path, exit_path).
 *
 * Sessions wholly inside the range come straight from the rollup
 * (session_summaries); the few that straddle an end of the range are
 * summed from their events in the range. Exact either way, and the rollup
 * row is read once instead of the session's events. Events without a
 * session (the service never writes any) are not in `per_session`.
 *
 * `readOnce`: the query reads `per_session` in one place, inside a CTE of
 * its own that is read more than once. SQLite then copied `per_session`
 * into a temporary table first, needlessly (popular pages' entries and
 * exits: 56 against 25 ms on the 1M-event benchmark); NOT MATERIALIZED
 * streams it. Left out where the query reads `per_session` more than once:
 * it would be computed again for every read.
 */
export function sessionsInRange(p: Params, range: Range, { readOnce = false } = {}): string {
  const counts = EVENT_TYPES.map(
    (t) => `SUM(CASE WHEN type = '${t}' THEN 1 ELSE 0 END) AS ${COUNT_COLUMN[t]}`,
  ).join(', ');
  return `
    edge_ids AS MATERIALIZED (${straddling(p, range)}),
    -- MATERIALIZED (edge_ids too) and CROSS JOIN (SQLite keeps that order): the few
    -- straddling sessions, then their events through the session index. Left to itself,
    -- the planner may walk every event or page view of the range instead (4x slower
    -- once session_summaries has statistics).
    edge_events AS MATERIALIZED (
      SELECT ev.session_id, ids.user_id, ev.type, ev.path, ev.occurred_at, ev.id
      FROM edge_ids ids CROSS JOIN events ev
      WHERE ev.session_id = ids.session_id AND ${inRange(p, range.from, range.to, 'ev.')}
    ),
    edge_pages AS (
      SELECT session_id, path,
        ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY occurred_at, id) AS a,
        ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY occurred_at DESC, id DESC) AS z
      FROM edge_events WHERE type = 'page_view'
    ),
    per_session AS ${readOnce ? 'NOT MATERIALIZED ' : ''}(
      SELECT session_id, user_id, first_at, last_at, ${COUNT_COLUMNS.join(', ')}, entry_path, exit_path
      FROM session_summaries
      WHERE ${wholeIn(p, range)}
      UNION ALL
      SELECT g.session_id, g.user_id, g.first_at, g.last_at, ${COUNT_COLUMNS.map((c) => `g.${c}`).join(', ')},
        en.path, ex.path
      FROM (
        SELECT session_id, MAX(user_id) AS user_id, MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at, ${counts}
        FROM edge_events GROUP BY session_id
      ) g
      LEFT JOIN edge_pages en ON en.session_id = g.session_id AND en.a = 1
      LEFT JOIN edge_pages ex ON ex.session_id = g.session_id AND ex.z = 1
    )`;
}

/** The window over a session's events or items, in time order. */
export const IN_SESSION = 'PARTITION BY session_id ORDER BY occurred_at, id';

/**
 * `session_id, occurred_at, id, item` of `source` with consecutive
 * duplicates within a session collapsed (the first of each run is kept).
 */
export function collapseRuns(source: string): string {
  return `SELECT session_id, occurred_at, id, item FROM (
        SELECT session_id, occurred_at, id, item, LAG(item) OVER (${IN_SESSION}) AS prev FROM ${source}
      ) marked
      WHERE prev IS NULL OR prev <> item`;
}

/** Condition on session_summaries: the session lies wholly inside the range. */
function wholeIn(p: Params, range: Range): string {
  return `first_at >= ${p.add(range.from)} AND first_at < ${p.add(range.to)} AND last_at < ${p.add(range.to)}`;
}

/** `session_id, user_id` of the sessions that straddle an end of the range (rollup rows matching `where`). */
function straddling(p: Params, range: Range, where = '1 = 1'): string {
  const from = () => p.add(range.from);
  const to = () => p.add(range.to);
  return `
      SELECT session_id, user_id FROM session_summaries
      WHERE first_at >= ${from()} AND first_at < ${to()} AND last_at >= ${to()} AND ${where}
      UNION ALL
      SELECT session_id, user_id FROM session_summaries
      WHERE last_at >= ${from()} AND first_at < ${from()} AND ${where}`;
}

/**
 * CTEs for the paths (METRICS.md: path items other than api_request,
 * consecutive duplicates collapsed) of the sessions of `part` in the range:
 * - `inside_paths(session_id, items)`: sessions wholly inside the range,
 *   their path read from the rollup (`items`, a JSON array; see pathElements);
 * - `edge_paths(session_id, occurred_at, id, item)`: the few sessions that
 *   straddle an end, and those whose path is too long to be kept, their
 *   path rebuilt from their events in the range.
 */
export function sessionPaths(p: Params, range: Range, part: Part): string {
  return `
    path_edge_ids AS MATERIALIZED (
      ${straddling(p, range, inPart('session_id', part))}
      UNION ALL
      SELECT session_id, user_id FROM session_summaries
      WHERE ${wholeIn(p, range)} AND items IS NULL AND items_at IS NOT NULL AND ${inPart('session_id', part)}
    ),
    edge_items AS MATERIALIZED (
      SELECT ev.session_id, ev.occurred_at, ev.id, ${PATH_ITEM_OF('ev.')} AS item
      FROM path_edge_ids ids CROSS JOIN events ev
      WHERE ev.session_id = ids.session_id AND ${inRange(p, range.from, range.to, 'ev.')}
        AND ev.type <> 'api_request'
    ),
    edge_paths AS (${collapseRuns('edge_items')}),
    inside_paths AS (
      SELECT session_id, items FROM session_summaries
      WHERE ${wholeIn(p, range)} AND items IS NOT NULL AND ${inPart('session_id', part)}
    )`;
}

/**
 * The items of `inside_paths` as rows: `from` (a FROM clause giving one
 * row per item, with `s.session_id`), and `at(k)`, the item k places after
 * that row's (`at(0)`: the item itself; NULL past the path's end). JSON
 * arrays are read differently by the two databases; PostgreSQL parses each
 * path once.
 */
export function pathElements(postgres: boolean): { from: string; at: (k: number) => string } {
  return postgres
    ? {
        from: `inside_paths s CROSS JOIN LATERAL (SELECT CAST(s.items AS jsonb) AS a) parsed
          CROSS JOIN LATERAL jsonb_array_elements_text(parsed.a) WITH ORDINALITY AS e(value, ord)`,
        at: (k) => (k === 0 ? 'e.value' : `(parsed.a ->> (CAST(e.ord AS integer) - 1 + ${k}))`),
      }
    : {
        from: 'inside_paths s, json_each(s.items) e',
        at: (k) => (k === 0 ? 'e.value' : `(s.items ->> (e.key + ${k}))`),
      };
}

/**
 * SQL for the bucket of `buckets` (consecutive periods) that `column` falls
 * in: its number `index` and its `end`. Arithmetic, not a join with the
 * buckets: over each run of equally long buckets (every UTC day; local days
 * between two daylight-saving changes; weeks; months of equal length) the
 * bucket is `(column - start) / length`, so a zone with changes in the span
 * adds a CASE arm per run. Integer division on both databases (integer
 * columns and literals). Only for `column` within the buckets.
 */
export function bucketOf(
  buckets: { start: number; end: number }[],
  column: string,
): { index: string; end: string } {
  const runs: { first: number; start: number; length: number; end: number }[] = [];
  buckets.forEach((bucket, i) => {
    const length = bucket.end - bucket.start;
    const run = runs[runs.length - 1];
    if (run?.length === length) run.end = bucket.end;
    else runs.push({ first: i, start: bucket.start, length, end: bucket.end });
  });
  const inRun = (run: (typeof runs)[number]) => `(${column} - ${run.start}) / ${run.length}`;
  const pick = (expression: (run: (typeof runs)[number]) => string) =>
    runs.length === 1
      ? expression(runs[0])
      : `(CASE ${runs
          .slice(0, -1)
          .map((run) => `WHEN ${column} < ${run.end} THEN ${expression(run)}`)
          .join(' ')} ELSE ${expression(runs[runs.length - 1])} END)`;
  return {
    index: pick((run) => `${run.first} + ${inRun(run)}`),
    end: pick((run) => `${run.start} + (${inRun(run)} + 1) * ${run.length}`),
  };
}

/** The span of consecutive `buckets`, and the rollup condition: a session starts in it. */
function spanOf(buckets: { start: number; end: number }[]) {
  const from = buckets[0].start;
  const to = buckets[buckets.length - 1].end;
  return { from, to, inSpan: `first_at >= ${from} AND first_at < ${to}` };
}

/**
 * CTEs for the actors active in each of `buckets`, consecutive periods that
 * `bucketsCte` names as a CTE `(d, s, e)`. Every event type counts.
 *
 * - `crossing(session_id, user_id)`: the sessions that have events in more
 *   than one bucket or outside the buckets (across a boundary, or an end of
 *   the span). Few: their buckets are found event by event (CROSS JOIN
 *   keeps SQLite on that order: the sessions, then their events).
 * - `irregular_users(user_id)` (with `irregularOnly`): the users with a
 *   crossing session or an event without a session in the span.
 * - `actor_buckets(actor, d)`: each actor with an event in bucket `d`. Any
 *   other session lies in one bucket, and gives its actor that bucket
 *   straight from the rollup. A pair repeats when the actor has several
 *   sessions in the bucket: readers count distinct actors or, like the
 *   rolling windows of activeSeries, are unaffected by repeats (dropping
 *   them here cost a sort of every pair). With `irregularOnly`, only the
 *   pairs of anonymous sessions and irregular users: actorBucketPairs reads
 *   the other users' sessions itself, in user order from an index.
 *
 * With `part`, only the actors in that part (see inPart).
 *
 * `postgres`: SQLite is told to find the crossing sessions through the
 * `(first_at, last_at)` index; without statistics its planner read the
 * whole table (12 against 4 ms for 60 days of the 1M-event benchmark).
 */
export function actorBuckets(
  buckets: { start: number; end: number }[],
  bucketsCte: string,
  options: { postgres: boolean; irregularOnly?: boolean; part?: Part },
): string {
  const mine = (alias = '') => actorInPart(options.part, alias);
  const { from, to, inSpan } = spanOf(buckets);
  const { index, end } = bucketOf(buckets, 'first_at');
  const summaries = options.postgres
    ? 'session_summaries'
    : 'session_summaries INDEXED BY ix_session_summaries_first_last';
  const sessionless = `ev.session_id IS NULL AND ev.user_id IS NOT NULL`;
  return `crossing AS MATERIALIZED (
      SELECT session_id, user_id FROM ${summaries} WHERE ${inSpan} AND last_at >= ${end} AND ${mine()}
      UNION ALL
      SELECT session_id, user_id FROM session_summaries
      WHERE last_at >= ${from} AND first_at < ${from} AND ${mine()}
    ),${
      options.irregularOnly
        ? `
    irregular_users AS MATERIALIZED (
      SELECT user_id FROM crossing WHERE user_id IS NOT NULL
      UNION
      SELECT ev.user_id FROM events ev
      WHERE ${sessionless} AND ev.occurred_at >= ${from} AND ev.occurred_at < ${to} AND ${mine('ev.')}
    ),`
        : ''
    }
    actor_buckets AS (
      SELECT ${ACTOR} AS actor, ${index} AS d FROM session_summaries
      WHERE ${inSpan} AND last_at < ${end} AND ${mine()}${
        options.irregularOnly
          ? ' AND (user_id IS NULL OR user_id IN (SELECT user_id FROM irregular_users))'
          : ''
      }
      UNION ALL
      SELECT DISTINCT ${actorOf('l.')}, b.d
      FROM crossing l CROSS JOIN events ev CROSS JOIN ${bucketsCte} b
      WHERE ev.session_id = l.session_id AND ev.occurred_at >= b.s AND ev.occurred_at < b.e
      UNION ALL
      SELECT DISTINCT ev.user_id, b.d
      FROM events ev JOIN ${bucketsCte} b ON ev.occurred_at >= b.s AND ev.occurred_at < b.e
      WHERE ${sessionless} AND ${mine('ev.')}
    )`;
}

/**
 * SQL counting `(d, prev, n)`: the actor-days of `buckets` (every event type
 * counted), each with the actor's previous active bucket (`prev`, NULL for
 * the first), n of each pair; see activeSeries for the rolling windows.
 * `bucketsCte` names the buckets as a CTE `(d, s, e)`; it must come first.
 *
 * Most users' sessions each lie within one bucket: their buckets come from
 * the `(user_id, first_at)` index already in user and time order, so their
 * window needs no sort (migration 0013). Anonymous sessions and the
 * irregular users (see actorBuckets) go through actor_buckets and a sort.
 * On the 1M-event benchmark: 85-105 ms of CPU for the series' 59 days where
 * a sort of every actor-day took 230. With `part`, only that part's actors.
 */
export function actorBucketPairs(
  buckets: { start: number; end: number }[],
  bucketsCte: string,
  options: { postgres: boolean; part?: Part },
): string {
  const { index } = bucketOf(buckets, 'first_at');
  return `${actorBuckets(buckets, bucketsCte, { ...options, irregularOnly: true })},
    regular AS (
      SELECT ${index} AS d, LAG(${index}) OVER (PARTITION BY user_id ORDER BY first_at) AS prev
      FROM session_summaries summary
      WHERE user_id IS NOT NULL AND ${spanOf(buckets).inSpan} AND ${actorInPart(options.part)}
        AND NOT EXISTS (SELECT 1 FROM irregular_users i WHERE i.user_id = summary.user_id)
    ),
    others AS (SELECT d, LAG(d) OVER (PARTITION BY actor ORDER BY d) AS prev FROM actor_buckets)
    SELECT d, prev, COUNT(*) AS n
    FROM (SELECT d, prev FROM regular UNION ALL SELECT d, prev FROM others) x GROUP BY d, prev`;
}

/**
 * `actors(user_id, session_id)`: one row per session (of `sessions`, by
 * default `per_session`) and per sessionless event, for COUNT_SESSION_ACTORS
 * (needs sessionlessInRange before it). `sessionColumn` stands in for the
 * session id: anything non-NULL for an anonymous session will do, since only
 * those are counted, each row once.
 */
export function actorsCte(sessions = 'per_session', sessionColumn = 'session_id'): string {
  return `actors AS (
  SELECT user_id, ${sessionColumn} AS session_id FROM ${sessions}
  UNION ALL SELECT user_id, NULL FROM sessionless
)`;
}

/** Events in the range that carry no session (not in `per_session`): `type`, `user_id`. */
export function sessionlessInRange(p: Params, range: Range): string {
  return `sessionless AS (
      SELECT type, user_id FROM events
      WHERE session_id IS NULL AND ${inRange(p, range.from, range.to)}
    )`;
}

export function inRange(p: Params, from: number, to: number, alias = ''): string {
  return `${alias}occurred_at >= ${p.add(from)} AND ${alias}occurred_at < ${p.add(to)}`;
}

export function apiFilter(includeApi: boolean, alias = ''): string {
  return includeApi ? '1 = 1' : `${alias}type <> 'api_request'`;
}

/**
 * `column = value`, or with `*` at either end a prefix, suffix or substring
 * match. Case-sensitive on both databases, like `=`: SQLite's LIKE ignores
 * ASCII case and PostgreSQL's does not, so the same funnel gave different
 * counts. Written with functions both have (substr, length and replace
 * count characters alike); `*` in the middle is a plain character.
 */
function matchText(column: string, pattern: string, p: Params): string {
  const anyStart = pattern.startsWith('*');
  const anyEnd = pattern.length > (anyStart ? 1 : 0) && pattern.endsWith('*');
  if (!anyStart && !anyEnd) return `${column} = ${p.add(pattern)}`;
  const core = pattern.slice(anyStart ? 1 : 0, anyEnd ? -1 : undefined);
  if (core === '') return `${column} IS NOT NULL`;
  const length = [...core].length; // characters, as SQL counts them
  if (anyStart && anyEnd) return `replace(${column}, ${p.add(core)}, '') <> ${column}`;
  if (anyEnd) return `substr(${column}, 1, ${p.add(length)}) = ${p.add(core)}`;
  return `(length(${column}) >= ${p.add(length)}
    AND substr(${column}, length(${column}) - ${p.add(length)} + 1) = ${p.add(core)})`;
}

/**
 * A page matcher written as stored paths are (see normalizePagePath): a
 * whole path normalised; the text of a wildcard pattern percent-encoded
 * (`/café/*` matches the stored `/caf%C3%A9/menu`), and a suffix pattern
 * without its trailing slashes, as stored paths have none (`*page/`
 * matches `/my%20page`).
 */
function pagePattern(page: string): string {
  const anyStart = page.startsWith('*');
  const anyEnd = page.length > 1 && page.endsWith('*');
  if (!anyStart && !anyEnd) return normalizePagePath(page) ?? page;
  let core = encodePathText(page.slice(anyStart ? 1 : 0, anyEnd ? -1 : undefined));
  // Not below `/`: `*/` ends with the root's slash, not with every page.
  if (!anyEnd && core !== '') core = core.replace(/\/+$/, '') || '/';
  return `${anyStart ? '*' : ''}${core}${anyEnd ? '*' : ''}`;
}

/** SQL condition for an event matcher. */
export function matcherSql(matcher: EventMatcherDto, p: Params, alias = ''): string {
  const parts = [`${alias}type = ${p.add(matcher.type)}`];
  if (matcher.name) parts.push(matchText(`${alias}name`, matcher.name, p));
  if (matcher.page) parts.push(matchText(`${alias}path`, pagePattern(matcher.page), p));
  return `(${parts.join(' AND ')})`;
}

/** Orders strings by their UTF-8 bytes, as `byteOrder` makes the databases sort. */
export const compareBytes = (a: string, b: string): number =>
  Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A ratio, or null when the divisor is 0. Always within [0, 1] for counts of subsets. */
export function ratio(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}

/**
 * `ratio` of a subset counted by one query to a whole counted by another:
 * on SQLite the two run in different workers, on PostgreSQL in different
 * snapshots, so events written (or stitched to a user) in between can make
 * the part exceed the whole for a moment. A share above 1 means nothing;
 * it is capped at 1.
 */
export function shareOf(part: number, whole: number): number | null {
  const value = ratio(part, whole);
  return value === null ? null : Math.min(1, value);
}

export const num = (value: unknown): number =>
  value === null || value === undefined ? 0 : Number(value);

/** Seconds with millisecond precision. */
export const seconds = (ms: number): number => Math.round(ms) / 1000;
