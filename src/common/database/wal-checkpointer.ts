import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { AppConfig } from '../config/config.js';
import { DatabaseService } from './database.service.js';

/** How often the worker copies committed WAL frames into the database file. */
const CHECKPOINT_INTERVAL_MS = 200;
/** After a checkpoint caught up, the WAL file is truncated to this size. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Runs inside the worker: its own connection (query_only: it can checkpoint,
 * never change data). PASSIVE never waits for, nor blocks, the writer.
 * Messages in: 'purge' (a TRUNCATE checkpoint, answered with whether it
 * emptied the WAL) and 'close'. Out: { warning } and { purged }.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('query_only = 1');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ warning: String((error && error.message) || error) });
  }
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'purge') {
    try {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)');
      parentPort.postMessage({ purged: result.busy === 0 });
    } catch (error) {
      parentPort.postMessage({ warning: String((error && error.message) || error), purged: false });
    }
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

type WorkerMessage = { warning?: string; purged?: boolean };

/**
 * WAL checkpoints off the event loop (SQLite files only). By default SQLite
 * checkpoints inside the commit that pushes the WAL past 1000 pages: the
 * main thread then copies pages into the database file and waits for fsync,
 * which cost about a third of every tracked request's write time here. The
 * main connection's automatic checkpoints are turned off and a worker
 * thread checkpoints instead. If that worker dies, automatic checkpoints
 * come back on, so the WAL can never grow without bound.
 */
@Injectable()
export class WalCheckpointer implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(WalCheckpointer.name);
  private worker: Worker | null = null;
  /** Callers of `purge` waiting for the worker's answers, in the order asked. */
  private readonly purges: ((purged: boolean) => void)[] = [];

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    const { type, path } = this.config.database;
    if (type !== 'sqlite' || path === ':memory:') return;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path,
        driver: require.resolve('better-sqlite3'),
        intervalMs: CHECKPOINT_INTERVAL_MS,
      },
    });
    worker.on('message', (message: WorkerMessage) => {
      if (message.warning) this.logger.warn(`WAL checkpoint: ${message.warning}`);
      if (message.purged !== undefined) this.purges.shift()?.(message.purged);
    });
    worker.on('error', (error) => this.logger.error(`WAL checkpointer failed: ${error.message}`));
    worker.on('exit', () => {
      if (this.worker !== worker) return; // stopped on purpose
      this.worker = null;
      for (const answer of this.purges.splice(0)) answer(false);
      this.database.sqlitePragma('wal_autocheckpoint = 1000');
      this.logger.warn('WAL checkpointer stopped; commits checkpoint again');
    });
    worker.unref();
    this.worker = worker;
    this.database.sqlitePragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    this.database.sqlitePragma('wal_autocheckpoint = 0');
  }

  /**
   * Copies the whole WAL into the database file and truncates it, so that
   * page versions written before a deletion (an erasure's rows) no longer
   * sit in the WAL file. Off the event loop, in the worker; it waits for
   * readers still on older snapshots up to the busy timeout. Resolves
   * whether the WAL was emptied (always true without a WAL to purge).
   */
  purge(): Promise<boolean> {
    const worker = this.worker;
    if (this.config.database.type !== 'sqlite' || this.config.database.path === ':memory:') {
      return Promise.resolve(true);
    }
    if (!worker) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.purges.push(resolve);
      worker.postMessage('purge');
    });
  }

  /** Before the main connection closes (which checkpoints what is left). */
  async onModuleDestroy(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    for (const answer of this.purges.splice(0)) answer(false);
    const exited = once(worker, 'exit');
    worker.postMessage('close');
    const timeout = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }
}
