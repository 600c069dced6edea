import { Injectable, UnauthorizedException } from '@nestjs/common';
import { Mutex } from 'async-mutex';
import type { Database as BetterSqlite3Database, Statement } from 'better-sqlite3';
import { Client } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { PreparedStatements, SqliteStatements } from './sqlite-connection.js';

/** Values per `IN (...)` list in executeInChunks and queryInChunks. */
const IN_LIST_CHUNK = 500;

/** `values` in chunks of IN_LIST_CHUNK, each with its placeholders (`?, ?, ...`). */
function* inLists(values: readonly unknown[]): Generator<{ list: string; chunk: unknown[] }> {
  for (let i = 0; i < values.length; i += IN_LIST_CHUNK) {
    const chunk = values.slice(i, i + IN_LIST_CHUNK);
    yield { list: chunk.map(() => '?').join(', '), chunk };
  }
}

/**
 * The database as the modules use it beyond repositories: transactions, raw
 * SQL on hot paths, and job locks that hold across app instances.
 *
 * Why a mutex on SQLite: TypeORM's better-sqlite3 driver shares ONE
 * connection (one query runner) across the process. Two concurrent
 * `dataSource.transaction()` calls would nest (the second becomes a
 * SAVEPOINT inside the first), and a plain UPDATE issued while another
 * request's transaction is open becomes part of it, to be lost if that one
 * rolls back. So on SQLite every write, transactional or not, runs under one
 * process-wide mutex. PostgreSQL uses its connection pool as usual.
 *
 * The SQLite file has other connections too: the analytics readers and the
 * WAL checkpointer (read-only), and the event writer's thread, which
 * inserts events and their session summaries. The thread commits under the
 * same mutex (`exclusively`), so its transactions and this connection's
 * never overlap: neither waits on SQLite's lock (a busy wait that would
 * block the event loop here), and a transaction here that read before it
 * wrote cannot find the thread's commit in between (SQLite would fail it
 * with SQLITE_BUSY, as TypeORM begins transactions DEFERRED).
 */
@Injectable()
export class DatabaseService implements SqliteStatements {
  private readonly writeLock = new Mutex();
  private readonly heldJobLocks = new Set<string>();
  readonly isPostgres: boolean;

  /** Prepared better-sqlite3 statements of the hot paths (see `read`). */
  private readonly statements = new PreparedStatements(() => this.sqliteConnection());

  /** Listeners of `watchWrites`, by trigger function name. */
  private readonly writeWatchers = new Map<string, Set<(key: unknown) => void>>();

  constructor(readonly dataSource: DataSource) {
    this.isPostgres = dataSource.options.type === 'postgres';
  }

  /** Runs `work` in one transaction; rolled back (and rethrown) on error. */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.isPostgres) return this.dataSource.transaction(work);
    return this.writeLock.runExclusive(() => this.dataSource.transaction(work));
  }

  /**
   * SQLite: runs `work` while no transaction of the shared connection runs
   * (under the write mutex): for writes on another connection of this
   * process, the event writer's thread. PostgreSQL: runs it as it is.
   */
  exclusively<T>(work: () => Promise<T>): Promise<T> {
    return this.isPostgres ? work() : this.writeLock.runExclusive(work);
  }

  /**
   * The rows `sql` returns (inside `manager`'s transaction when given); `?`
   * placeholders work on both databases. Always the rows, whatever the
   * statement: TypeORM's plain `query` answers a PostgreSQL UPDATE or DELETE
   * with `[rows, count]`, which once made every `UPDATE ... RETURNING` of the
   * rollup writer look empty.
   */
  async query<T = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
    manager?: EntityManager,
  ): Promise<T[]> {
    const shared = manager?.queryRunner;
    const runner = shared ?? this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(this.dialect(sql), params, true);
      return (result.records ?? []) as T[];
    } finally {
      if (!shared) await runner.release();
    }
  }

  /**
   * A hot-path read (session check, session data). On SQLite it runs a
   * better-sqlite3 statement prepared once, skipping TypeORM's per-query
   * work (about 4x faster here); on PostgreSQL it is `query`.
   */
  async read<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const statement = this.sqliteStatement(sql);
    if (!statement) return this.query<T>(sql, params);
    return Promise.resolve(statement.all(...params) as T[]);
  }

  /**
   * A better-sqlite3 statement prepared once on the shared connection (so it
   * runs inside whatever transaction is open there), or null on PostgreSQL.
   * For hot paths only; parameters must be numbers, strings or null.
   */
  sqliteStatement(sql: string): Statement | null {
    if (this.isPostgres) return null;
    return this.statements.sqliteStatement(sql);
  }

  /**
   * SQLite: runs `work` synchronously in one transaction on the shared
   * connection, under the write mutex. Nothing else can run on the
   * connection meanwhile, and TypeORM's per-query work is skipped: for the
   * event writer's group commits when it has no thread of its own.
   */
  sqliteTransaction<T>(work: (db: BetterSqlite3Database) => T): Promise<T> {
    const db = this.sqliteConnection();
    return this.writeLock.runExclusive(() => db.transaction(() => work(db)).immediate());
  }

  /** SQLite: a PRAGMA on the shared connection (no-op on PostgreSQL). */
  sqlitePragma(pragma: string): void {
    if (!this.isPostgres) this.sqliteConnection().pragma(pragma);
  }

  /** Whether a transaction is open on the shared SQLite connection (always false on PostgreSQL). */
  get inSqliteTransaction(): boolean {
    return !this.isPostgres && this.sqliteConnection().inTransaction;
  }

  /**
   * SQLite only: calls `listener(key)` for every row of `table` this process
   * inserts, updates or deletes, with the row's `keyColumn` value (before
   * and after an update). Lets in-process caches stay exact whatever code
   * path writes. Implemented with TEMP triggers, which live on this
   * connection only: other processes and the read-only analytics
   * connections never see them. Returns false (nothing watched) on
   * PostgreSQL, where other instances write too.
   */
  watchWrites(table: string, keyColumn: string, listener: (key: unknown) => void): boolean {
    if (this.isPostgres) return false;
    const name = `sas_watch_${table}_${keyColumn}`;
    let listeners = this.writeWatchers.get(name);
    if (!listeners) {
      const registered = new Set<(key: unknown) => void>();
      listeners = registered;
      this.writeWatchers.set(name, registered);
      const db = this.sqliteConnection();
      db.function(name, { deterministic: false }, (key: unknown) => {
        for (const notify of registered) notify(key);
        return null;
      });
      const on = `main."${table}"`;
      db.exec(`
        CREATE TEMP TRIGGER IF NOT EXISTS ${name}_insert AFTER INSERT ON ${on}
          BEGIN SELECT ${name}(NEW."${keyColumn}"); END;
        CREATE TEMP TRIGGER IF NOT EXISTS ${name}_update AFTER UPDATE ON ${on}
          BEGIN SELECT ${name}(OLD."${keyColumn}"); SELECT ${name}(NEW."${keyColumn}"); END;
        CREATE TEMP TRIGGER IF NOT EXISTS ${name}_delete AFTER DELETE ON ${on}
          BEGIN SELECT ${name}(OLD."${keyColumn}"); END;`);
    }
    listeners.add(listener);
    return true;
  }

  private sqliteConnection(): BetterSqlite3Database {
    const driver = this.dataSource.driver as unknown as {
      databaseConnection: BetterSqlite3Database;
    };
    return driver.databaseConnection;
  }

  /**
   * A single-statement write in a transaction of its own; returns affected
   * rows. Serialized on SQLite (see the class comment).
   */
  execute(sql: string, params: unknown[] = []): Promise<number> {
    return this.transaction((manager) => this.executeIn(manager, sql, params));
  }

  /** A single-statement write inside `manager`'s transaction; returns affected rows. */
  async executeIn(manager: EntityManager, sql: string, params: unknown[] = []): Promise<number> {
    const runner = manager.queryRunner;
    if (!runner) throw new Error('executeIn needs a transactional EntityManager');
    const result = await runner.query(this.dialect(sql), params, true);
    return result.affected ?? 0;
  }

  /**
   * Runs `statement(list)` inside `manager`'s transaction once per chunk of
   * up to 500 `values`, `list` being that chunk's placeholders (`?, ?, ...`)
   * and its values the parameters; returns the affected rows in all. For
   * `... IN (list)` over lists of any length (both databases cap parameters).
   */
  async executeInChunks(
    manager: EntityManager,
    values: readonly unknown[],
    statement: (list: string) => string,
  ): Promise<number> {
    let affected = 0;
    for (const { list, chunk } of inLists(values)) {
      affected += await this.executeIn(manager, statement(list), chunk);
    }
    return affected;
  }

  /**
   * The rows of `statement(list)` run once per chunk of up to 500 `values`
   * (inside `manager`'s transaction when given), `list` being that chunk's
   * placeholders: `... IN (list)` reads over lists of any length.
   */
  async queryInChunks<T>(
    values: readonly unknown[],
    statement: (list: string) => string,
    manager?: EntityManager,
  ): Promise<T[]> {
    const rows: T[] = [];
    for (const { list, chunk } of inLists(values)) {
      rows.push(...(await this.query<T>(statement(list), chunk, manager)));
    }
    return rows;
  }

  /**
   * Deletes up to `batch` rows of `table` whose `timeColumn` is before
   * `cutoff`, in a transaction of its own; returns how many. Retention and
   * cleanup loop on it so no transaction holds the write lock for long.
   */
  deleteOlderThan(
    table: string,
    timeColumn: string,
    cutoff: number,
    batch: number,
  ): Promise<number> {
    return this.execute(
      `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${timeColumn} < ? LIMIT ${Math.floor(batch)})`,
      [cutoff],
    );
  }

  /**
   * Locks the row of `table` with primary key `id` until the transaction
   * ends (PostgreSQL). On SQLite the write mutex already serializes writers.
   */
  async lockRow(manager: EntityManager, table: string, id: string): Promise<void> {
    if (!this.isPostgres) return;
    await manager.query(`SELECT 1 FROM "${table}" WHERE id = $1 FOR UPDATE`, [id]);
  }

  /**
   * Which of `userIds` no longer exist, read in `manager`'s transaction: a
   * write about a user that lands after their erasure must not name them.
   * On PostgreSQL the rows are read FOR KEY SHARE, and the erasure locks the
   * user row FOR UPDATE first, so either the erasure waits for this
   * transaction (and removes or anonymises what it wrote) or this read waits
   * for the erasure and sees the user gone. On SQLite one transaction runs
   * at a time.
   */
  async missingUsers(userIds: string[], manager: EntityManager): Promise<Set<string>> {
    return this.missingRows('users', userIds, manager);
  }

  /**
   * Which of `sessionIds` no longer exist, read as missingUsers reads users:
   * the erasure locks the user's sessions FOR UPDATE before it deletes their
   * events, so an anonymous event of an upgraded session, written by another
   * instance, either commits first and is deleted, or finds the session gone.
   */
  async missingSessions(sessionIds: string[], manager: EntityManager): Promise<Set<string>> {
    return this.missingRows('sessions', sessionIds, manager);
  }

  private async missingRows(
    table: 'users' | 'sessions',
    ids: string[],
    manager: EntityManager,
  ): Promise<Set<string>> {
    const rows = await this.queryInChunks<{ id: string }>(
      ids,
      (list) =>
        `SELECT id FROM ${table} WHERE id IN (${list})${this.isPostgres ? ' FOR KEY SHARE' : ''}`,
      manager,
    );
    const existing = new Set(rows.map((row) => row.id));
    return new Set(ids.filter((id) => !existing.has(id)));
  }

  /**
   * Runs `work` unless another holder (this process, or on PostgreSQL any
   * instance) holds the job lock `name`; returns undefined when skipped.
   */
  async withJobLock<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
    if (this.heldJobLocks.has(name)) return undefined;
    this.heldJobLocks.add(name);
    try {
      if (!this.isPostgres) return await work();
      return await this.withLockSession(async (lock) => {
        const { rows } = await lock.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
          [name],
        );
        return rows[0]?.locked ? work() : undefined;
      });
    } finally {
      this.heldJobLocks.delete(name);
    }
  }

  /**
   * PostgreSQL: runs `work` with a session of its own, outside the pool, for
   * an advisory lock held while `work` uses the pool; ending the session
   * releases the lock. Taken from the pool, the lock's connection left none
   * for the work with DB_POOL_MAX=1 (a retention run or start-up hung).
   */
  async withLockSession<T>(work: (lock: Client) => Promise<T>): Promise<T> {
    const { url } = this.dataSource.options as { url?: string };
    const lock = new Client({ connectionString: url });
    await lock.connect();
    try {
      return await work(lock);
    } finally {
      await lock.end();
    }
  }

  /**
   * Appended to ORDER BY terms on text so ties sort by bytes on both
   * databases (PostgreSQL's locale collations ignore punctuation).
   */
  get byteOrder(): string {
    return this.isPostgres ? ' COLLATE "C"' : '';
  }

  /** `?` placeholders to `$1, $2, ...` on PostgreSQL. */
  /** `sql` with its `?` placeholders as the database wants them (`$1`... on PostgreSQL). */
  dialect(sql: string): string {
    if (!this.isPostgres) return sql;
    let index = 0;
    return sql.replace(/\?/g, () => `$${++index}`);
  }
}

/**
 * 401 when `userId` no longer exists, read under the erasure's lock (see
 * DatabaseService.missingUsers): a write on behalf of a user whose erasure
 * committed meanwhile must neither name them again nor fail on a foreign key
 * (a 500). The caller's session died with the account.
 */
export async function assertUserExists(
  database: DatabaseService,
  userId: string,
  manager: EntityManager,
): Promise<void> {
  if ((await database.missingUsers([userId], manager)).size > 0) {
    throw new UnauthorizedException('Authentication required: no valid session');
  }
}
