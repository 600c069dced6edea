import {
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
  ServiceUnavailableException,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { ChildProcess, fork } from 'node:child_process';
import { Pool } from 'pg';
import { compiledEntry } from '../../common/compiled-entry.js';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import type { ReaderReply, ReaderRequest } from './analytics-reader.process.js';
import type { Part } from './sql.js';

/** How much of the database file each reader process maps into memory (see its file). */
const MMAP_BYTES = 1024 * 1024 * 1024;

/**
 * Analytics queries that run at once: reader processes on SQLite (the
 * machine has two cores, one of them for requests), connections of the
 * analytics pool on PostgreSQL. Others wait their turn.
 */
const WORKERS = 2;

/** PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout. */
const QUERY_CANCELED = '57014';

/** 503: an analytics query ran past ANALYTICS_QUERY_TIMEOUT_S and was stopped. */
export class AnalyticsTimeoutException extends ServiceUnavailableException {
  constructor(timeoutMs: number) {
    super(
      `The analytics query ran longer than ${timeoutMs / 1000} s (ANALYTICS_QUERY_TIMEOUT_S) and was stopped: ask about a shorter range or fewer steps`,
    );
  }
}

/** 503: the service began shutting down while the query ran (see AnalyticsReader). */
export class AnalyticsShutdownException extends ServiceUnavailableException {
  constructor() {
    super('The service is shutting down: ask again in a moment (another instance may answer)');
  }
}

interface Query {
  sql: string;
  params: unknown[];
  resolve: (rows: unknown[]) => void;
  reject: (error: Error) => void;
}

/** A reader process and the one query it is answering, if any (with its timeout). */
interface Slot {
  reader: ChildProcess;
  running: Query | null;
  deadline?: NodeJS.Timeout;
  /** When the running query's own time (ANALYTICS_QUERY_TIMEOUT_S) is up. */
  timesOutAt?: number;
}

/**
 * Where analytics queries run. better-sqlite3 is synchronous: a 1 s query on
 * the main connection would freeze every request for 1 s. On a SQLite file,
 * analytics therefore read in reader processes, each with its own read-only
 * connection (see analytics-reader.process.ts), and the event loop keeps
 * serving sessions and tracking. On
 * PostgreSQL they use a small pool of their own: on the main pool, ten heavy
 * funnels took every connection and a session check waited a minute for
 * one. A `:memory:` database (not shareable) is read on the main connection.
 *
 * A query running past ANALYTICS_QUERY_TIMEOUT_S is stopped (503): on
 * PostgreSQL by the pool's statement_timeout, on SQLite by killing its
 * process (better-sqlite3 cannot interrupt a statement); a new process
 * takes the next query.
 *
 * At shutdown the HTTP server waits for requests in flight, and a query of
 * up to 30 s held it past SHUTDOWN_TIMEOUT_MS: the process then exited 1
 * without draining the event queue. So once shutdown begins, SQLite queries
 * get at most half of SHUTDOWN_TIMEOUT_MS (503 after it); PostgreSQL's run
 * on under their statement_timeout.
 */
@Injectable()
export class AnalyticsReader implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AnalyticsReader.name);
  /** Reader processes, started as needed. */
  private readonly slots: Slot[] = [];
  /** Queries no reader has taken yet, in arrival order. */
  private readonly waiting: Query[] = [];
  /** Shut down: no reader is started any more. */
  private closed = false;
  /** PostgreSQL: the analytics pool, opened on first use. */
  private pool: Pool | null = null;
  /** Set when shutdown begins: no SQLite query runs past it. */
  private shutdownDeadline = Infinity;

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    // The adapter is missing when the reader runs outside an HTTP app (none does today).
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    fastify?.addHook('preClose', (done) => {
      this.shutdownDeadline = Date.now() + this.config.http.inFlightAtShutdownMs;
      for (const slot of this.slots) if (slot.running) this.arm(slot);
      done();
    });
  }

  /** See DatabaseService.byteOrder. */
  get byteOrder(): string {
    return this.database.byteOrder;
  }

  get isPostgres(): boolean {
    return this.database.isPostgres;
  }

  get usesWorker(): boolean {
    return !this.database.isPostgres && this.config.database.path !== ':memory:';
  }

  /**
   * Runs a query cut into disjoint parts side by side and returns each
   * part's rows. `build` makes the SQL of one part (see `inPart`): one part
   * per reader on a SQLite file, where a query otherwise keeps one core busy
   * while the other idles; the query whole elsewhere (PostgreSQL plans its
   * own parallel scans). The caller adds the parts' figures up, so each
   * part must count things no other part counts.
   */
  queryParts<T>(build: (part: Part) => { sql: string; params: unknown[] }): Promise<T[][]> {
    const count = this.usesWorker ? WORKERS : 1;
    return Promise.all(
      Array.from({ length: count }, (_, index) => {
        const { sql, params } = build({ index, count });
        return this.query<T>(sql, params);
      }),
    );
  }

  query<T>(sql: string, params: unknown[]): Promise<T[]> {
    if (this.database.isPostgres) return this.queryPostgres<T>(sql, params);
    if (!this.usesWorker) return this.database.query<T>(sql, params);
    return new Promise<T[]>((resolve, reject) => {
      this.waiting.push({ sql, params, resolve: resolve as (rows: unknown[]) => void, reject });
      this.dispatch();
    });
  }

  private async queryPostgres<T>(sql: string, params: unknown[]): Promise<T[]> {
    const { queryTimeoutMs } = this.config.analytics;
    if (!this.pool) {
      this.pool = new Pool({
        connectionString: this.config.database.url,
        max: WORKERS,
        statement_timeout: queryTimeoutMs,
        application_name: 'session-activity-analytics',
      });
      // An idle connection that breaks (server restart) must not crash the process.
      this.pool.on('error', (error) => this.logger.warn(`Analytics pool: ${error.message}`));
    }
    try {
      const result = await this.pool.query(this.database.dialect(sql), params);
      return result.rows as T[];
    } catch (error) {
      if ((error as { code?: string }).code === QUERY_CANCELED) {
        throw new AnalyticsTimeoutException(queryTimeoutMs);
      }
      throw error;
    }
  }

  /**
   * Hands waiting queries to idle readers, one query per reader at a time:
   * a reader that finishes takes the next, so a report's queries of unequal
   * cost spread over both readers instead of queueing behind a long one.
   */
  private dispatch(): void {
    while (this.waiting.length > 0 && !this.closed) {
      const slot =
        this.slots.find((candidate) => candidate.running === null) ??
        (this.slots.length < WORKERS ? this.startReader() : undefined);
      if (!slot) return;
      const query = this.waiting.shift()!;
      slot.running = query;
      slot.timesOutAt = Date.now() + this.config.analytics.queryTimeoutMs;
      this.arm(slot);
      const request: ReaderRequest = { sql: query.sql, params: query.params };
      slot.reader.send(request);
    }
  }

  /**
   * Not onModuleDestroy: Nest runs destroy hooks before it closes the HTTP
   * server, so requests still in flight lost their reader mid-query (500).
   * Shutdown hooks run after the server has finished them.
   */
  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    await this.pool?.end();
    for (const query of this.waiting.splice(0))
      query.reject(new Error('The analytics reader stopped'));
    const readers = this.slots.map((slot) => slot.reader);
    await Promise.all(
      readers.map((reader) => {
        if (reader.exitCode !== null || reader.signalCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => reader.once('exit', resolve));
        reader.kill('SIGKILL');
        return exited;
      }),
    );
  }

  private startReader(): Slot {
    const entry = compiledEntry(
      __dirname,
      'modules/analytics',
      'analytics-reader.process.js',
      'The analytics reader',
    );
    const reader = fork(entry, [this.config.database.path, String(MMAP_BYTES)], {
      // Structured clone, as between threads: rows keep their types (no JSON round trip).
      serialization: 'advanced',
      // A plain process: not the service's flags (heap size, Jest's loaders).
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const slot: Slot = { reader, running: null };
    const fail = (error: Error) => {
      clearTimeout(slot.deadline);
      slot.running?.reject(error);
      slot.running = null;
      this.retire(slot);
      this.dispatch(); // a new reader takes the waiting queries up
    };
    reader.on('message', (reply: ReaderReply) => {
      const query = slot.running;
      if (!query) return;
      clearTimeout(slot.deadline);
      slot.running = null;
      if ('error' in reply) query.reject(new Error(reply.error));
      else query.resolve(reply.rows);
      this.dispatch();
    });
    reader.on('error', (error) => {
      this.logger.error(`Analytics reader process failed: ${error.message}`);
      fail(error);
    });
    reader.on('exit', () => fail(new Error('The analytics reader process stopped')));
    // Idle readers do not keep the service running.
    reader.unref();
    reader.channel?.unref();
    this.slots.push(slot);
    return slot;
  }

  /** (Re)sets the timer that stops the slot's running query: at its own time, or the shutdown's. */
  private arm(slot: Slot): void {
    clearTimeout(slot.deadline);
    const at = Math.min(slot.timesOutAt ?? Infinity, this.shutdownDeadline);
    slot.deadline = setTimeout(() => this.stop(slot), Math.max(0, at - Date.now()));
  }

  /** Kills the reader of a query past its time: the query is refused, a new reader takes the next. */
  private stop(slot: Slot): void {
    const query = slot.running;
    if (!query) return;
    slot.running = null;
    // Out of the slots at once: until its exit event, it must not be handed a query.
    this.retire(slot);
    query.reject(
      this.shutdownDeadline < (slot.timesOutAt ?? Infinity)
        ? new AnalyticsShutdownException()
        : new AnalyticsTimeoutException(this.config.analytics.queryTimeoutMs),
    );
    slot.reader.kill('SIGKILL');
    this.dispatch();
  }

  private retire(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
  }
}
