import { Worker } from 'node:worker_threads';
import { compiledEntry } from '../../common/compiled-entry.js';
import { sqliteConnectionPragmas } from '../../common/database/sqlite-connection.js';
import type { SqliteBatchResult, SqliteJob } from './sqlite-event-batch.js';

/** What the thread starts with. */
export interface WriterThreadData {
  path: string;
  pragmas: string[];
}

export type WriterRequest = { type: 'commit'; id: number; jobs: SqliteJob[] } | { type: 'close' };

export type WriterReply =
  | { id: number; result: SqliteBatchResult }
  | { id: number; error: { message: string; code?: string } };

/** A commit refused because the thread had already ended: it never reached the thread. */
export class WriterThreadGone extends Error {
  constructor(cause: Error) {
    super(`The event writer's thread had ended: ${cause.message}`, { cause });
  }
}

/**
 * Group commits of the SQLite event writer, run on a worker thread with its
 * own connection to the database file. better-sqlite3 is synchronous: on
 * the main thread each tracked request's insert (about 14 µs with the
 * events indexes and the summary upsert) blocked the event loop, and the
 * session check served about 0.7-0.8 of its throughput without tracking;
 * with the inserts here it served 0.86-0.89 (A/B, 2026-12-03). The main
 * thread only hands the rows over (a structured clone per batch). The
 * caller runs `commit` under the main connection's write mutex
 * (`DatabaseService.exclusively`), so the two connections never wait for
 * each other's lock.
 *
 * Committed means committed: `commit` resolves after the thread's
 * transaction committed, so `EventWriter.write` keeps its promise. If the
 * thread dies, its pending commits are rejected and `onExit` tells the
 * owner to stop using it: the writer retries a failed batch of several jobs
 * job by job on the main connection, and fails a lone job (an explicit
 * write then answers with an error, never with a false acknowledgement).
 * A thread that died between its commit and its answer leaves rows the
 * retry stores again; automatic events have no duplicate key, so such a
 * crash can count one batch of them twice.
 */
export class SqliteWriterThread {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (result: SqliteBatchResult) => void; reject: (error: Error) => void }
  >();
  private nextId = 1;
  private closing = false;
  /** Why the thread ended, once it has: commits are refused from then on. */
  private exitError: Error | null = null;

  constructor(databasePath: string, onExit: (error: Error) => void) {
    const workerData: WriterThreadData = {
      path: databasePath,
      pragmas: sqliteConnectionPragmas(),
    };
    // Its objects live for one batch: a small young generation keeps the thread's memory
    // (which counts against the service's budget) low at no measurable cost.
    const entry = compiledEntry(
      __dirname,
      'modules/tracking',
      'sqlite-writer.worker.js',
      "The event writer's worker",
    );
    this.worker = new Worker(entry, {
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    this.worker.on('message', (reply: WriterReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if ('result' in reply) waiting.resolve(reply.result);
      else
        waiting.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
    });
    let failure: Error | null = null;
    this.worker.on('error', (error) => (failure = error));
    this.worker.on('exit', (code) => {
      const error = failure ?? new Error(`The event writer's thread exited with code ${code}`);
      this.exitError = error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
      if (!this.closing) onExit(error);
    });
  }

  /** Runs the jobs in one transaction on the thread; resolves once it committed. */
  commit(jobs: SqliteJob[]): Promise<SqliteBatchResult> {
    // Exited already (a flush took this thread before waiting for the write lock): a message
    // now would never be answered, and the flush, and every drain after it, would hang.
    // Nothing was sent, so the caller may safely commit the jobs elsewhere.
    if (this.exitError) return Promise.reject(new WriterThreadGone(this.exitError));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'commit', id, jobs } satisfies WriterRequest);
    });
  }

  /** Closes the thread's connection and ends it (after the last commit was answered). */
  async close(): Promise<void> {
    this.closing = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies WriterRequest);
    await exited;
  }

  /** Ends the thread at once, as a crash would (for tests of the fallback). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
