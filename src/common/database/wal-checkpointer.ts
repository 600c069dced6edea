import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { AppConfig } from '../config/config.js';
import { DatabaseService } from './database.service.js';

/** How often the worker copies committed WAL frames into the database file. */
const CHECKPOINT_INTERVAL_MS = 200;

/**
 * Runs inside the worker: its own connection (query_only: it can checkpoint,
 * never change data). PASSIVE never waits for, nor blocks, the writer.
 * Messages in: 'purge' (a TRUNCATE checkpoint, answered with whether it
 * emptied the WAL), 'catch-up' (a PASSIVE checkpoint now, answered with
 * whether it copied every frame) and 'close'. Out: { warning } and
 * { answer }, one per 'purge' or 'catch-up', in the order asked.
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
  if (message === 'purge' || message === 'catch-up') {
    try {
      const [result] = db.pragma(message === 'purge' ? 'wal_checkpoint(TRUNCATE)' : 'wal_checkpoint(PASSIVE)');
      parentPort.postMessage({ answer: result.busy === 0 && result.log === result.checkpointed });
    } catch (error) {
      parentPort.postMessage({ warning: String((error && error.message) || error), answer: false });
    }
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

type WorkerMessage = { warning?: string; answer?: boolean };

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
  /** Callers of `purge` and `catchUp` waiting for the worker's answers, in the order asked. */
  private readonly waiting: ((answer: boolean) => void)[] = [];

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
      if (message.answer !== undefined) this.waiting.shift()?.(message.answer);
    });
    worker.on('error', (error) => this.logger.error(`WAL checkpointer failed: ${error.message}`));
    worker.on('exit', () => {
      if (this.worker !== worker) return; // stopped on purpose
      this.worker = null;
      for (const answer of this.waiting.splice(0)) answer(false);
      this.database.sqlitePragma('wal_autocheckpoint = 1000');
      this.logger.warn('WAL checkpointer stopped; commits checkpoint again');
    });
    worker.unref();
    this.worker = worker;
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
    return this.ask('purge');
  }

  /**
   * A passive checkpoint now (it never waits for, nor blocks, a writer);
   * resolves whether it copied every frame of the WAL, so that the next
   * commit starts the file over (truncated to its size limit; see
   * sqliteConnectionPragmas). The periodic checkpoints never catch up with
   * a job that commits batch after batch (retention): its WAL grew to 866
   * MB. Such a job waits for this between batches.
   */
  catchUp(): Promise<boolean> {
    return this.ask('catch-up');
  }

  private ask(message: 'purge' | 'catch-up'): Promise<boolean> {
    const worker = this.worker;
    if (this.config.database.type !== 'sqlite' || this.config.database.path === ':memory:') {
      return Promise.resolve(true);
    }
    if (!worker) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      worker.postMessage(message);
    });
  }

  /** Before the main connection closes (which checkpoints what is left). */
  async onModuleDestroy(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    for (const answer of this.waiting.splice(0)) answer(false);
    const exited = once(worker, 'exit');
    worker.postMessage('close');
    const timeout = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }
}
