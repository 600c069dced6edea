import type { SqliteStatements } from '../../common/database/sqlite-connection.js';
import {
  anonymousSessionsOf,
  EVENT_COLUMNS,
  EVENT_PLACEHOLDERS,
  eventValues,
  GoneOwners,
  SKIP_RESENT,
  usersOf,
} from './event-row.js';
import type { EventRow } from './event-row.js';
import { expandRequestEvents, type RequestEventBlock } from './request-events.js';
import { SummaryBatch } from './session-summaries.js';

/** One writer job as SQLite stores it. */
export interface SqliteJob {
  rows: EventRow[];
  /** Automatic request events, column-wise (then `rows` is empty): expanded here. */
  requests: RequestEventBlock | null;
  /** Whether the stored rows are wanted (someone awaits them, or the live stream watches). */
  keep: boolean;
}

export interface SqliteBatchResult {
  /**
   * Per job that `keep`s, each row's database id, 0 for a row not stored (a
   * duplicate, or an erased user's); empty for the other jobs. Ids, not
   * rows: from the writer's thread they come back as a structured clone.
   */
  ids: number[][];
  /** Session summaries recomputed from their events (see WriterStats.rebuiltSummaries). */
  rebuiltSummaries: number;
}

const INSERT_ONE = `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${EVENT_PLACEHOLDERS} ${SKIP_RESENT}`;
const USER_EXISTS = 'SELECT 1 FROM users WHERE id = ?';
const SESSION_EXISTS = 'SELECT 1 FROM sessions WHERE id = ?';

/**
 * The body of one SQLite group commit; the caller runs it inside a write
 * transaction of the connection `statements` belongs to. A prepared
 * single-row statement per row (no SQL text to build or parse), and the
 * stored rows folded into the session summaries in the same transaction.
 * Rows of users, or anonymous rows of sessions, that no longer exist are not
 * written (see EventWriter).
 * Runs in the writer's thread, or on the main connection when there is none.
 */
export function insertSqliteBatch(
  statements: SqliteStatements,
  jobs: SqliteJob[],
): SqliteBatchResult {
  const insert = statements.sqliteStatement(INSERT_ONE);
  const userExists = statements.sqliteStatement(USER_EXISTS);
  const sessionExists = statements.sqliteStatement(SESSION_EXISTS);
  if (!insert || !userExists || !sessionExists) throw new Error('insertSqliteBatch needs SQLite');
  const jobRows = jobs.map((job) => (job.requests ? expandRequestEvents(job.requests) : job.rows));
  const gone = new GoneOwners(
    new Set(usersOf(jobRows).filter((id) => userExists.get(id) === undefined)),
    new Set(anonymousSessionsOf(jobRows).filter((id) => sessionExists.get(id) === undefined)),
  );
  const summaries = new SummaryBatch();
  const ids = jobs.map((job, j) => {
    const jobIds: number[] = [];
    for (const row of jobRows[j]) {
      let id = 0;
      if (gone.none || !gone.owns(row)) {
        const { changes, lastInsertRowid } = insert.run(...eventValues(row));
        if (changes > 0) {
          id = Number(lastInsertRowid);
          summaries.add(row, id);
        }
      }
      if (job.keep) jobIds.push(id);
    }
    return jobIds;
  });
  return { ids, rebuiltSummaries: summaries.applySqlite(statements) };
}
