import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { DatabaseService } from '../../common/database/database.service.js';
import { EVENT_TYPES, EventType } from './entities/event.entity.js';
import type { EventRow } from './event-row.js';

/**
 * The per-session rollup (`session_summaries`): first and last event time,
 * events per type, entry and exit page. Session-level analytics (durations,
 * bounces, sessions, actors, the type breakdown, entry and exit pages) read
 * one row per session instead of every event; a month of 1M events is 33k
 * rows instead of 330k.
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
 * also a run of neighbouring rows on SQLite.
 */
export function rebuildSql(scope: string): string {
  const entry = (column: string) => `MAX(CASE WHEN pv_rank = 1 THEN ${column} END)`;
  const exit = (column: string) => `MAX(CASE WHEN pv_rank = pv_count THEN ${column} END)`;
  return `INSERT INTO session_summaries (${COLUMNS.join(', ')})
    SELECT session_id, MAX(user_id), MIN(occurred_at), MAX(occurred_at),
      ${EVENT_TYPES.map((t) => `SUM(CASE WHEN type = '${t}' THEN 1 ELSE 0 END)`).join(', ')},
      ${entry('occurred_at')}, ${entry('id')}, ${entry('path')},
      ${exit('occurred_at')}, ${exit('id')}, ${exit('path')}
    FROM (
      SELECT session_id, user_id, occurred_at, id, type, path,
        CASE WHEN type = 'page_view' THEN ROW_NUMBER() OVER pv END AS pv_rank,
        CASE WHEN type = 'page_view'
          THEN COUNT(*) OVER (pv ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) END AS pv_count
      FROM events
      WHERE session_id IS NOT NULL AND (${scope})
      WINDOW pv AS (
        PARTITION BY session_id, CASE WHEN type = 'page_view' THEN 1 ELSE 0 END ORDER BY occurred_at, id
      )
    ) ranked
    GROUP BY session_id
    ORDER BY MIN(occurred_at)`;
}

/** Every session's summary from scratch (migration backfill, demo generator). */
export async function rebuildAllSummaries(run: (sql: string) => Promise<unknown>): Promise<void> {
  await run('DELETE FROM session_summaries');
  await run(rebuildSql('1 = 1'));
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

  /** SQLite: runs the upserts on the shared connection (inside the writer's transaction). */
  applySqlite(database: DatabaseService): void {
    if (this.deltas.size === 0) return;
    const upsert = database.sqliteStatement(UPSERT_ONE);
    if (!upsert) throw new Error('applySqlite needs SQLite');
    for (const row of this.rows()) upsert.run(...row);
  }

  /** PostgreSQL: multi-row upserts inside `manager`'s transaction. */
  async apply(database: DatabaseService, manager: EntityManager): Promise<void> {
    const rows = this.rows();
    for (let start = 0; start < rows.length; start += ROWS_PER_UPSERT) {
      const chunk = rows.slice(start, start + ROWS_PER_UPSERT);
      await database.query(upsertSql(chunk.length), chunk.flat(), manager);
    }
  }
}

/** Maintenance of the rollup by the code paths that change events after they were written. */
@Injectable()
export class SessionSummaries {
  constructor(private readonly database: DatabaseService) {}

  /** Recomputes from the events table the summaries of `sessionIds`. */
  async rebuild(sessionIds: string[], manager?: EntityManager): Promise<void> {
    if (!manager) {
      await this.database.transaction((m) => this.rebuild(sessionIds, m));
      return;
    }
    const unique = [...new Set(sessionIds)];
    await this.database.executeInChunks(
      manager,
      unique,
      (list) => `DELETE FROM session_summaries WHERE session_id IN (${list})`,
    );
    await this.database.executeInChunks(manager, unique, (list) =>
      rebuildSql(`session_id IN (${list})`),
    );
  }

  /** Identity stitching: the session's summary belongs to the user from now on. */
  attribute(sessionId: string, userId: string, manager: EntityManager): Promise<number> {
    return this.database.executeIn(
      manager,
      'UPDATE session_summaries SET user_id = ? WHERE session_id = ? AND user_id IS NULL',
      [userId, sessionId],
    );
  }

  /** Erasure: the summaries of the user's sessions go with their events. */
  async forget(userId: string, sessionIds: string[], manager: EntityManager): Promise<void> {
    await this.database.executeIn(manager, 'DELETE FROM session_summaries WHERE user_id = ?', [
      userId,
    ]);
    await this.database.executeInChunks(
      manager,
      sessionIds,
      (list) => `DELETE FROM session_summaries WHERE session_id IN (${list})`,
    );
  }
}
