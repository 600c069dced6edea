import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Worker } from 'node:worker_threads';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';

/**
 * Runs inside the worker: its own read-only better-sqlite3 connection on the
 * same file. WAL lets it read while the main connection writes.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const statements = new Map();
parentPort.on('message', ({ id, sql, params }) => {
  try {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
      if (statements.size > 256) statements.delete(statements.keys().next().value);
    }
    parentPort.postMessage({ id, rows: statement.all(...params) });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;

interface Pending {
  resolve: (rows: unknown[]) => void;
  reject: (error: Error) => void;
}

/**
 * Where analytics queries run. better-sqlite3 is synchronous: a 1 s query on
 * the main connection would freeze every request for 1 s. On a SQLite file,
 * analytics therefore read through a worker thread with its own read-only
 * connection, and the event loop keeps serving sessions and tracking. On
 * PostgreSQL (asynchronous driver) and for `:memory:` databases (not
 * shareable), queries use the main connection.
 */
@Injectable()
export class AnalyticsReader implements OnModuleDestroy {
  private readonly logger = new Logger(AnalyticsReader.name);
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
  ) {}

  /** See DatabaseService.byteOrder. */
  get byteOrder(): string {
    return this.database.byteOrder;
  }

  get usesWorker(): boolean {
    return !this.database.isPostgres && this.config.database.path !== ':memory:';
  }

  query<T>(sql: string, params: unknown[]): Promise<T[]> {
    if (!this.usesWorker) return this.database.query<T>(sql, params);
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<T[]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
      worker.postMessage({ id, sql, params });
    });
  }

  async onModuleDestroy(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path: this.config.database.path, driver: require.resolve('better-sqlite3') },
    });
    worker.on('message', (message: { id: number; rows?: unknown[]; error?: string }) => {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) waiting.reject(new Error(message.error));
      else waiting.resolve(message.rows ?? []);
    });
    worker.on('error', (error) => {
      this.logger.error(`Analytics worker failed: ${error.message}`);
      this.failAll(error);
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = null;
      this.failAll(new Error('The analytics worker stopped'));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
