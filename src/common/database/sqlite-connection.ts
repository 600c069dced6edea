import type { Database, Statement } from 'better-sqlite3';

/** Where hot paths get their prepared better-sqlite3 statements (null on PostgreSQL). */
export interface SqliteStatements {
  sqliteStatement(sql: string): Statement | null;
}

/**
 * better-sqlite3 statements of one connection, each prepared once per SQL
 * text: preparing parses and plans the SQL, which costs more than running
 * the statement on the hot paths that use this.
 */
export class PreparedStatements implements SqliteStatements {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly connection: () => Database) {}

  sqliteStatement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.connection().prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/** Milliseconds a SQLite connection of the app waits for the write lock before SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/**
 * The WAL file's size once a commit starts it over after a checkpoint
 * copied it all (SQLite truncates it then, on the connection that commits:
 * each writing connection needs the limit).
 */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * The PRAGMAs every writing connection to the SQLite file runs first. WAL
 * lets readers run beside the single writer; NORMAL is durable in WAL mode
 * across application crashes (only an OS crash may lose the last commits).
 * secure_delete overwrites what a DELETE removes with zeros: without it an
 * erased user's name, pages and session data stayed readable in the file
 * (and in its copies and backups) until SQLite reused those bytes. The WAL
 * still holds the rows' earlier page versions until the checkpointer
 * truncates it after an erasure (WalCheckpointer.purge).
 */
export function sqliteConnectionPragmas(): string[] {
  // The busy timeout first: a connection opened while another writes (the writer's thread
  // while start-up migrations run) then waits in the PRAGMAs that need a lock.
  return [
    `busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`,
    'journal_mode = WAL',
    'synchronous = NORMAL',
    'foreign_keys = ON',
    'secure_delete = ON',
    `journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`,
  ];
}
