import { Logger } from '@nestjs/common';
import type { DatabaseService } from './database.service.js';

/** Entries older than this are read again even without a write (a hand edit by another process). */
const MAX_AGE_MS = 60_000;

/**
 * The rows one hot-path SELECT returns per key, kept in memory on SQLite so
 * repeated lookups (the session check on every request) skip the database.
 *
 * Exact, not "eventually consistent": whoever owns the cache drops entries
 * from `DatabaseService.watchWrites` listeners, which fire inside every
 * write this process makes to the watched tables, and nothing is cached
 * while a transaction is open on the shared connection (its uncommitted
 * rows might roll back). On SQLite this process is the only writer (see
 * README, PostgreSQL for many instances). On PostgreSQL the cache is never
 * enabled: other instances write too, so every lookup reads.
 *
 * Cached rows are frozen and shared between callers: build new objects from them.
 */
export class RowCache<Row extends object> {
  private readonly entries = new Map<string, { rows: readonly Row[]; at: number }>();
  private enabled = false;

  /**
   * `maxEntries` bounds the count; `worthKeeping` may refuse rows (too big to
   * hold in memory, say), which are then read every time.
   */
  constructor(
    private readonly database: DatabaseService,
    private readonly sql: string,
    private readonly maxEntries = 10_000,
    private readonly worthKeeping: (rows: readonly Row[]) => boolean = () => true,
  ) {}

  /**
   * Starts caching once `watch` registered the owner's write watchers (after
   * migrations, so the tables exist). Stays off when `watch` returns false
   * (PostgreSQL) or fails (logged: the lookups then simply read every time).
   */
  enable(label: string, watch: () => boolean): void {
    try {
      this.enabled = watch();
    } catch (error) {
      new Logger(RowCache.name).warn(`${label} cache off: ${(error as Error).message}`);
    }
  }

  /** The rows for `key` (the SELECT run with `params`). */
  async rows(key: string, params: unknown[]): Promise<readonly Row[]> {
    if (!this.enabled) return this.database.read<Row>(this.sql, params);
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < MAX_AGE_MS) return hit.rows;
    // Synchronous from here on (better-sqlite3), so no write can slip in between
    // the read and the store.
    const cacheable = !this.database.inSqliteTransaction;
    const rows = this.database.sqliteStatement(this.sql)!.all(...params) as Row[];
    rows.forEach((row) => Object.freeze(row));
    if (cacheable && this.worthKeeping(rows)) {
      this.entries.delete(key);
      if (this.entries.size >= this.maxEntries) {
        // Oldest first (Map keeps insertion order).
        this.entries.delete(this.entries.keys().next().value!);
      }
      this.entries.set(key, { rows: Object.freeze(rows), at: now });
    }
    return rows;
  }

  invalidate(key: unknown): void {
    if (typeof key === 'string') this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
