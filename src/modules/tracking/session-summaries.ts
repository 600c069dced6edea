import type { EntityManager } from 'typeorm';
import type { DatabaseService } from '../../common/database/database.service.js';
import type { SqliteStatements } from '../../common/database/sqlite-connection.js';
import type { EventRow } from './event-row.js';
import { EVENT_TYPES, type EventType } from './event-types.js';

/**
 * The per-session rollup (`session_summaries`): first and last event time,
 * events per type, entry and exit page, and the session's path (`items`).
 * Session-level analytics (durations, bounces, sessions, actors, the type
 * breakdown, entry and exit pages, transitions and patterns) read one row
 * per session instead of every event; a month of 1M events is 33k rows
 * instead of 330k.
 *
 * Kept exact, not eventually consistent:
 * - the event writer folds every batch it inserts into the summaries in the
 *   same transaction (one upsert per session and batch, so the hot path
 *   pays almost nothing: a tracked request adds to its session's row);
 * - identity stitching, erasure and retention, the only other code that
 *   changes events, update or rebuild the rows of the sessions they touch
 *   in their own transaction;
 * - anything else that writes events (the demo generator, test fixtures,
 *   hand-written SQL) calls `rebuild` for the sessions it wrote.
 * Measured alternative: an INSERT trigger on events did the same with no
 * code involved, but more than doubled the cost of every insert (30 to
 * 69 µs a row on this machine).
 */
export const COUNT_COLUMN: Record<EventType, string> = {
  login: 'logins',
  logout: 'logouts',
  page_view: 'page_views',
  action: 'actions',
  api_request: 'api_requests',
  error: 'errors',
  custom: 'customs',
};

/** The count columns in EVENT_TYPES order. */
export const COUNT_COLUMNS = EVENT_TYPES.map((type) => COUNT_COLUMN[type]);

const COLUMNS = [
  'session_id',
  'user_id',
  'first_at',
  'last_at',
  ...COUNT_COLUMNS,
  'entry_at',
  'entry_id',
  'entry_path',
  'exit_at',
  'exit_id',
  'exit_path',
];

const ROW_PLACEHOLDERS = `(${COLUMNS.map(() => '?').join(', ')})`;

/** An event's path item (METRICS.md, journeys and patterns); `alias` qualifies the columns. */
export const PATH_ITEM_OF = (alias = ''): string =>
  `CASE WHEN ${alias}type = 'page_view' THEN ${alias}path WHEN ${alias}type = 'action' THEN 'action:' || ${alias}name ELSE ${alias}type END`;
export const PATH_ITEM = PATH_ITEM_OF();

/** PATH_ITEM of a row in JS (page views carry a path and actions a name: the API requires them). */
function pathItem(row: Pick<EventRow, 'type' | 'path' | 'name'>): string {
  if (row.type === 'page_view') return row.path ?? '';
  if (row.type === 'action') return `action:${row.name ?? ''}`;
  return row.type;
}

/**
 * `items`: the session's path as a JSON array (text): the path items of its
 * events other than api_request, in (occurred_at, id) order, consecutive
 * duplicates collapsed. `items_at`/`items_id` are the (occurred_at, id) of
 * the last of those events: a later batch whose items all come after it is
 * appended, anything else rebuilds the row. Automatic api_request events
 * never touch these columns, so the tracked request's hot path pays nothing
 * for them. No such events: all three null. A path longer than
 * MAX_PATH_CHARS is not kept (`items` null, `items_at` set): appending
 * rewrites the row, and one endless session (a crawler, say) must not make
 * every batch of it rewrite megabytes; analytics read such a session from
 * its events.
 */
const ITEM_COLUMNS = ['items', 'items_at', 'items_id'];

/** Longest path kept in `items`, in characters of JSON text (about a thousand items). */
export const MAX_PATH_CHARS = 16_384;

/** `path` (JSON text), or null when longer than MAX_PATH_CHARS. */
const capped = (path: string) =>
  `(SELECT CASE WHEN length(path) > ${MAX_PATH_CHARS} THEN NULL ELSE path END FROM (SELECT ${path} AS path) p)`;

/**
 * SQLite: appends a batch's items to one session's path when they all come
 * after its last item (else changes nothing: the caller rebuilds the row).
 * JSON arrays are appended as text (both sides are minified JSON), dropping
 * the batch's first item when it repeats the path's last.
 */
const APPEND_ITEMS_SQLITE = `UPDATE session_summaries SET
    items = CASE
      WHEN items IS NULL AND items_at IS NOT NULL THEN NULL
      ELSE ${capped(`CASE
        WHEN items IS NULL THEN :all
        WHEN json_extract(items, '$[#-1]') = :head
          THEN CASE WHEN :rest IS NULL THEN items ELSE substr(items, 1, length(items) - 1) || ',' || substr(:rest, 2) END
        ELSE substr(items, 1, length(items) - 1) || ',' || substr(:all, 2)
      END`)}
    END,
    items_at = :lastAt, items_id = :lastId
  WHERE session_id = :sessionId
    AND (items_at IS NULL OR items_at < :firstAt OR (items_at = :firstAt AND items_id < :firstId))`;

/** PostgreSQL: APPEND_ITEMS_SQLITE for many sessions at once; returns the sessions it appended to. */
function appendItemsPostgres(rows: number): string {
  const row =
    '(?, ?, ?, ?, CAST(? AS bigint), CAST(? AS bigint), CAST(? AS bigint), CAST(? AS bigint))';
  return `UPDATE session_summaries s SET
      items = CASE
        WHEN s.items IS NULL AND s.items_at IS NOT NULL THEN NULL
        ELSE ${capped(`CASE
          WHEN s.items IS NULL THEN CAST(CAST(v.all_items AS jsonb) AS text)
          WHEN CAST(s.items AS jsonb) ->> -1 = v.head
            THEN CAST(CAST(s.items AS jsonb) || CAST(COALESCE(v.rest, '[]') AS jsonb) AS text)
          ELSE CAST(CAST(s.items AS jsonb) || CAST(v.all_items AS jsonb) AS text)
        END`)}
      END,
      items_at = v.last_at, items_id = v.last_id
    FROM (VALUES ${Array<string>(rows).fill(row).join(', ')})
      AS v(session_id, all_items, head, rest, first_at, first_id, last_at, last_id)
    WHERE s.session_id = v.session_id
      AND (s.items_at IS NULL OR s.items_at < v.first_at OR (s.items_at = v.first_at AND s.items_id < v.first_id))
    RETURNING s.session_id`;
}

/** Rows per upsert statement on PostgreSQL (17 parameters each, far below its limit). */
const ROWS_PER_UPSERT = 500;

/** `excluded`'s page view comes before (or, for the exit, after) the stored one in (occurred_at, id) order. */
function replaces(prefix: 'entry' | 'exit'): string {
  const cmp = prefix === 'entry' ? '<' : '>';
  const s = `session_summaries.${prefix}`;
  const x = `excluded.${prefix}`;
  return `${x}_at IS NOT NULL AND (${s}_at IS NULL OR ${x}_at ${cmp} ${s}_at OR (${x}_at = ${s}_at AND ${x}_id ${cmp} ${s}_id))`;
}

function upsertSql(rows: number): string {
  const pick = (prefix: 'entry' | 'exit', column: string) =>
    `${prefix}_${column} = CASE WHEN ${replaces(prefix)} THEN excluded.${prefix}_${column} ELSE session_summaries.${prefix}_${column} END`;
  return `INSERT INTO session_summaries (${COLUMNS.join(', ')})
    VALUES ${Array<string>(rows).fill(ROW_PLACEHOLDERS).join(', ')}
    ON CONFLICT (session_id) DO UPDATE SET
      user_id = COALESCE(excluded.user_id, session_summaries.user_id),
      first_at = CASE WHEN excluded.first_at < session_summaries.first_at THEN excluded.first_at ELSE session_summaries.first_at END,
      last_at = CASE WHEN excluded.last_at > session_summaries.last_at THEN excluded.last_at ELSE session_summaries.last_at END,
      ${COUNT_COLUMNS.map((c) => `${c} = session_summaries.${c} + excluded.${c}`).join(',\n      ')},
      ${['at', 'id', 'path'].flatMap((c) => [pick('entry', c), pick('exit', c)]).join(',\n      ')}`;
}

/** The single-row upsert, built once: the writer prepares it on SQLite for every batch. */
const UPSERT_ONE = upsertSql(1);

/**
 * INSERT ... SELECT recomputing the summaries of the sessions whose events
 * match `scope` (a condition on `events`; its parameters appear once).
 * Rows of those sessions must be deleted first. One pass, no join: page
 * views are ranked within their session by a window, so the plan cannot
 * degrade into a nested loop on a database without statistics (a join of
 * the first and last page views did, quadratically). Inserted in time
 * order, as the writer creates them, so that a time range of sessions is
 * also a run of neighbouring rows on SQLite. The path (`items`) is built by
 * an ordered aggregate, which the two databases spell differently.
 */
export function rebuildSql(scope: string, postgres: boolean): string {
  const entry = (column: string) => `MAX(CASE WHEN pv_rank = 1 THEN ${column} END)`;
  const exit = (column: string) => `MAX(CASE WHEN pv_rank = pv_count THEN ${column} END)`;
  const last = (column: string) => `MAX(CASE WHEN it_rank = it_count THEN ${column} END)`;
  const kept = 'item IS NOT NULL AND (prev_item IS NULL OR prev_item <> item)';
  const path = postgres
    ? `CAST(jsonb_agg(item ORDER BY occurred_at, id) FILTER (WHERE ${kept}) AS text)`
    : `CASE WHEN COUNT(item) > 0 THEN json_group_array(item ORDER BY occurred_at, id) FILTER (WHERE ${kept}) END`;
  // Not `capped`: its subquery would take the aggregate as its own. The aggregate written
  // twice is computed once (both databases share identical aggregate expressions).
  const items = `CASE WHEN length(${path}) > ${MAX_PATH_CHARS} THEN NULL ELSE ${path} END`;
  const notApi = "type <> 'api_request'";
  return `INSERT INTO session_summaries (${[...COLUMNS, ...ITEM_COLUMNS].join(', ')})
    SELECT session_id, MAX(user_id), MIN(occurred_at), MAX(occurred_at),
      ${EVENT_TYPES.map((t) => `SUM(CASE WHEN type = '${t}' THEN 1 ELSE 0 END)`).join(', ')},
      ${entry('occurred_at')}, ${entry('id')}, ${entry('path')},
      ${exit('occurred_at')}, ${exit('id')}, ${exit('path')},
      ${items}, ${last('occurred_at')}, ${last('id')}
    FROM (
      SELECT session_id, user_id, occurred_at, id, type, path,
        CASE WHEN type = 'page_view' THEN ROW_NUMBER() OVER pv END AS pv_rank,
        CASE WHEN type = 'page_view'
          THEN COUNT(*) OVER (pv ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) END AS pv_count,
        CASE WHEN ${notApi} THEN ${PATH_ITEM} END AS item,
        CASE WHEN ${notApi} THEN LAG(${PATH_ITEM}) OVER it END AS prev_item,
        CASE WHEN ${notApi} THEN ROW_NUMBER() OVER it END AS it_rank,
        CASE WHEN ${notApi}
          THEN COUNT(*) OVER (it ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) END AS it_count
      FROM events
      WHERE session_id IS NOT NULL AND (${scope})
      WINDOW pv AS (
        PARTITION BY session_id, CASE WHEN type = 'page_view' THEN 1 ELSE 0 END ORDER BY occurred_at, id
      ), it AS (
        PARTITION BY session_id, CASE WHEN ${notApi} THEN 1 ELSE 0 END ORDER BY occurred_at, id
      )
    ) ranked
    GROUP BY session_id
    ORDER BY MIN(occurred_at)`;
}

const DELETE_ONE = 'DELETE FROM session_summaries WHERE session_id = ?';
const REBUILD_ONE_SQLITE = rebuildSql('session_id = ?', false);

/** Recomputes the summaries of `sessionIds` inside `manager`'s transaction. */
export async function rebuildSessions(
  database: DatabaseService,
  manager: EntityManager,
  sessionIds: string[],
): Promise<void> {
  const unique = [...new Set(sessionIds)];
  await database.executeInChunks(
    manager,
    unique,
    (list) => `DELETE FROM session_summaries WHERE session_id IN (${list})`,
  );
  await database.executeInChunks(manager, unique, (list) =>
    rebuildSql(`session_id IN (${list})`, database.isPostgres),
  );
}

/** Every session's summary from scratch (migration backfill, demo generator). */
export async function rebuildAllSummaries(
  run: (sql: string) => Promise<unknown>,
  postgres: boolean,
): Promise<void> {
  await run('DELETE FROM session_summaries');
  await run(rebuildSql('1 = 1', postgres));
}

interface PageViewMark {
  at: number;
  id: number;
  path: string | null;
}

interface Delta {
  sessionId: string;
  userId: string | null;
  firstAt: number;
  lastAt: number;
  counts: number[];
  entry: PageViewMark | null;
  exit: PageViewMark | null;
  /** The batch's events other than api_request, for the session's path. */
  items: { at: number; id: number; item: string }[];
}

/** What a batch appends to a session's path (see APPEND_ITEMS_SQLITE). */
interface ItemsAppend {
  sessionId: string;
  all: string;
  head: string;
  rest: string | null;
  firstAt: number;
  firstId: number;
  lastAt: number;
  lastId: number;
}

const before = (a: PageViewMark, b: PageViewMark) => a.at < b.at || (a.at === b.at && a.id < b.id);

/** What one write batch adds to each session's summary. */
export class SummaryBatch {
  private readonly deltas = new Map<string, Delta>();

  /** A row the database stored, with its id. */
  add(row: EventRow, id: number): void {
    if (row.sessionId === null) return;
    let delta = this.deltas.get(row.sessionId);
    if (!delta) {
      delta = {
        sessionId: row.sessionId,
        userId: row.userId,
        firstAt: row.occurredAt,
        lastAt: row.occurredAt,
        counts: COUNT_COLUMNS.map(() => 0),
        entry: null,
        exit: null,
        items: [],
      };
      this.deltas.set(row.sessionId, delta);
    }
    delta.userId ??= row.userId;
    if (row.occurredAt < delta.firstAt) delta.firstAt = row.occurredAt;
    if (row.occurredAt > delta.lastAt) delta.lastAt = row.occurredAt;
    const index = EVENT_TYPES.indexOf(row.type);
    if (index >= 0) delta.counts[index]++;
    if (row.type === 'page_view') {
      const mark = { at: row.occurredAt, id, path: row.path };
      if (!delta.entry || before(mark, delta.entry)) delta.entry = mark;
      if (!delta.exit || before(delta.exit, mark)) delta.exit = mark;
    }
    if (row.type !== 'api_request') {
      delta.items.push({ at: row.occurredAt, id, item: pathItem(row) });
    }
  }

  /** Per session with items in this batch: its path items in order, collapsed. */
  private appends(): ItemsAppend[] {
    const appends: ItemsAppend[] = [];
    for (const d of this.deltas.values()) {
      if (d.items.length === 0) continue;
      const events = d.items.sort((a, b) => a.at - b.at || a.id - b.id);
      const path = events
        .map((e) => e.item)
        .filter((item, i, all) => i === 0 || item !== all[i - 1]);
      const first = events[0];
      const last = events[events.length - 1];
      appends.push({
        sessionId: d.sessionId,
        all: JSON.stringify(path),
        head: path[0],
        rest: path.length > 1 ? JSON.stringify(path.slice(1)) : null,
        firstAt: first.at,
        firstId: first.id,
        lastAt: last.at,
        lastId: last.id,
      });
    }
    return appends.sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
  }

  /** Upsert parameters per session, in session id order (one lock order for concurrent writers). */
  private rows(): unknown[][] {
    return [...this.deltas.values()]
      .sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1))
      .map((d) => [
        d.sessionId,
        d.userId,
        d.firstAt,
        d.lastAt,
        ...d.counts,
        d.entry?.at ?? null,
        d.entry?.id ?? null,
        d.entry?.path ?? null,
        d.exit?.at ?? null,
        d.exit?.id ?? null,
        d.exit?.path ?? null,
      ]);
  }

  /**
   * SQLite: runs the upserts on the connection `statements` prepares for
   * (inside the writer's transaction), appends each session's new items to
   * its path, and rebuilds the rows of sessions where this batch brought an
   * item from before the path's last one; returns how many sessions it
   * rebuilt.
   */
  applySqlite(statements: SqliteStatements): number {
    if (this.deltas.size === 0) return 0;
    const upsert = statements.sqliteStatement(UPSERT_ONE);
    const append = statements.sqliteStatement(APPEND_ITEMS_SQLITE);
    const remove = statements.sqliteStatement(DELETE_ONE);
    const rebuild = statements.sqliteStatement(REBUILD_ONE_SQLITE);
    if (!upsert || !append || !remove || !rebuild) throw new Error('applySqlite needs SQLite');
    for (const row of this.rows()) upsert.run(...row);
    let rebuilt = 0;
    for (const items of this.appends()) {
      if (append.run(items).changes > 0) continue;
      // An item from before the path's end (a late or resent batch): recount the row.
      remove.run(items.sessionId);
      rebuild.run(items.sessionId);
      rebuilt++;
    }
    return rebuilt;
  }

  /** PostgreSQL: multi-row upserts inside `manager`'s transaction, then as applySqlite. */
  async apply(database: DatabaseService, manager: EntityManager): Promise<number> {
    const rows = this.rows();
    for (let start = 0; start < rows.length; start += ROWS_PER_UPSERT) {
      const chunk = rows.slice(start, start + ROWS_PER_UPSERT);
      await database.query(upsertSql(chunk.length), chunk.flat(), manager);
    }
    const appends = this.appends();
    const stale: string[] = [];
    for (let start = 0; start < appends.length; start += ROWS_PER_UPSERT) {
      const chunk = appends.slice(start, start + ROWS_PER_UPSERT);
      const done = await database.query<{ session_id: string }>(
        appendItemsPostgres(chunk.length),
        chunk.flatMap((a) => [
          a.sessionId,
          a.all,
          a.head,
          a.rest,
          a.firstAt,
          a.firstId,
          a.lastAt,
          a.lastId,
        ]),
        manager,
      );
      const appended = new Set(done.map((r) => r.session_id));
      stale.push(...chunk.filter((a) => !appended.has(a.sessionId)).map((a) => a.sessionId));
    }
    await rebuildSessions(database, manager, stale);
    return stale.length;
  }
}
