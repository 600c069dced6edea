import {
  Injectable,
  Logger,
  OnModuleInit,
  PayloadTooLargeException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import {
  anonymousSessionsOf,
  EVENT_COLUMNS,
  EVENT_PLACEHOLDERS,
  eventValues,
  GoneOwners,
  SKIP_RESENT,
  usersOf,
} from './event-row.js';
import type { EventRow, StoredEvent } from './event-row.js';
import { LiveEventStream } from './live-stream.service.js';
import {
  expandRequestEvents,
  REQUEST_EVENT_BYTES,
  RequestEventBlockBuilder,
} from './request-events.js';
import type { RequestActor, RequestRoute } from './request-events.js';
import { SummaryBatch } from './session-summaries.js';
import { insertSqliteBatch } from './sqlite-event-batch.js';
import { SqliteWriterThread, WriterThreadGone } from './sqlite-writer-thread.js';

/** Rows per INSERT statement: 12 parameters each stays far below both databases' limits. */
const ROWS_PER_STATEMENT = 500;

/**
 * Roughly what a queued row holds on the heap: its strings (properties JSON,
 * path, name, user agent) and a fixed allowance for the rest of the object.
 */
const ROW_OVERHEAD_BYTES = 300;
function rowBytes(row: EventRow): number {
  return (
    ROW_OVERHEAD_BYTES +
    (row.properties?.length ?? 0) +
    (row.path?.length ?? 0) +
    (row.name?.length ?? 0) +
    (row.userAgent?.length ?? 0)
  );
}
function jobBytes(rows: EventRow[]): number {
  let bytes = 0;
  for (const row of rows) bytes += rowBytes(row);
  return bytes;
}

interface Job {
  /** Explicit and server-made events. */
  rows: EventRow[];
  /** Automatic request events, column-wise (then `rows` is empty): see RequestEventBlock. */
  requests: RequestEventBlockBuilder | null;
  /** About how much the job holds on the heap (jobBytes of its rows, or what its block grew by). */
  bytes: number;
  /** Someone waits for the stored rows (explicit writes); automatic events go unanswered. */
  awaited: boolean;
  resolve: (stored: StoredEvent[]) => void;
  reject: (error: unknown) => void;
}

export interface WriterStats {
  queued: number;
  /** Automatic events dropped because the queue was full. */
  dropped: number;
  /** Automatic events lost because their batch failed to commit. */
  failed: number;
  /**
   * Session summaries the writer recomputed from their events because a
   * batch brought items from before the session path's end (late or
   * reordered events). In-order tracking appends and keeps this at 0; a
   * steady rise means clients send old timestamps, each costing a read of
   * the session's events.
   */
  rebuiltSummaries: number;
  /** Where batches commit: the SQLite writer thread, the main connection, or PostgreSQL's pool. */
  writer: 'thread' | 'main' | 'pool';
}

/** How many events a job holds. */
function sizeOf(job: Job): number {
  return job.requests?.size ?? job.rows.length;
}

/** A job's events as rows (a block of request events is expanded: see RequestEventBlock). */
function rowsOf(job: Job): EventRow[] {
  return job.requests ? expandRequestEvents(job.requests.block) : job.rows;
}

/**
 * The one way events reach the database: group commit. Writes queue in
 * memory and are inserted in one transaction per batch (at once when
 * TRACKING_BATCH_MAX rows wait).
 *
 * - `write()` resolves only after the transaction holding the rows
 *   committed, so an acknowledged explicit event survives a crash. Its rows
 *   are committed within TRACKING_FLUSH_MS, or right after the commit that
 *   is running when they arrive.
 * - `enqueue()` (automatic events) does not wait. While only such rows are
 *   queued, they are committed every TRACKING_AUTO_FLUSH_MS: much of a
 *   commit's cost is the pages it writes, nearly as many for ten rows as
 *   for a thousand, and committing them as they trickled in (every
 *   TRACKING_FLUSH_MS, or right after the previous commit, as explicit
 *   writes are) made transactions of about 75 rows at 4,100 requests/s.
 *   Measured with better-sqlite3 on the events schema: 51 µs a row in
 *   batches of 125 against 23 µs in batches of 1,000. They join any
 *   earlier commit an explicit write triggers.
 * - The queue is bounded (TRACKING_QUEUE_MAX): `write()` then throws 503
 *   with Retry-After, `enqueue()` drops and counts. Nothing is dropped
 *   silently: counts are logged and shown by GET /health/ready.
 * - Resent events (same dedupe key) are skipped by the database, and come
 *   back from `write()` as not stored.
 * - Shutdown drains the queue before the database closes (`drainAll()`).
 * - Rows of users that no longer exist are not written, checked in the
 *   insert's transaction: a request of an erased user that was past its
 *   checks when the erasure ran (another device, a batch in flight) must not
 *   bring their events back after it. The same for anonymous rows whose
 *   session no longer exists: another instance may still hold an upgraded
 *   session's anonymous events when the erasure deletes it. One lookup per
 *   distinct user, and per distinct anonymous session, per batch.
 * - On a SQLite file the transactions run on a thread of their own
 *   (SqliteWriterThread), off the event loop; should that thread die, on
 *   the main connection, as with an in-memory database.
 */
@Injectable()
export class EventWriter implements OnModuleInit {
  private readonly logger = new Logger(EventWriter.name);
  private queue: Job[] = [];
  private queuedRows = 0;
  /** jobBytes of the queued rows. */
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (ms since the epoch). */
  private timerDue = 0;
  /** Queued jobs someone waits for (`write()`). */
  private awaitedJobs = 0;
  private flushing: Promise<void> | null = null;
  private dropped = 0;
  private failed = 0;
  private rebuiltSummaries = 0;
  private readonly pendingDecisions = new Set<Promise<void>>();
  private thread: SqliteWriterThread | null = null;
  private readonly anonymousListeners: ((sessionIds: string[]) => Promise<void>)[] = [];
  /** What those listeners are still doing (drain() waits for it). */
  private readonly listening = new Set<Promise<void>>();
  /** Jobs ever queued, and ever settled (committed or failed): jobs settle in queue order. */
  private pushed = 0;
  private settled = 0;
  /** The job count that running drains wait to see settled (flushes go on until then). */
  private drainTarget = 0;
  private readonly drainWaiters: { target: number; reached: () => void }[] = [];

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly live: LiveEventStream,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * Starts the writer's thread (SQLite files). Drains on Fastify's onClose,
   * which runs after in-flight requests finished and before Nest's shutdown
   * hooks close the database.
   */
  onModuleInit(): void {
    const { type, path } = this.config.database;
    if (type === 'sqlite' && path !== ':memory:') {
      this.thread = new SqliteWriterThread(path, (error) => {
        this.thread = null;
        this.logger.error(
          `The event writer's thread stopped (${error.message}); events are written on the main thread from now on`,
        );
      });
    }
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onClose', async () => {
      await this.drainAll();
      // Drained: a timer still armed has nothing left to commit.
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      await this.thread?.close();
      this.thread = null;
      if (this.dropped + this.failed > 0) {
        this.logger.warn(
          `Shut down with ${this.dropped} dropped and ${this.failed} failed automatic events`,
        );
      }
    });
  }

  /**
   * Throws what `write` would for `count` rows of `bytes` (jobBytes): 413
   * when they could never fit the queue, 503 while it is too full for them
   * now. Lets a request refuse before it changes anything (such as starting
   * a session). The queue is bounded in rows and in bytes: 100,000 rows of
   * 8 KB properties would hold 800 MB.
   */
  assertRoomFor(count: number, bytes = 0): void {
    const { queueMax, queueMaxBytes } = this.config.tracking;
    // Not 503 (retry): a batch larger than the whole queue would never fit.
    if (count > queueMax) {
      throw new PayloadTooLargeException(
        `The batch holds ${count} events; this server queues at most ${queueMax} (TRACKING_QUEUE_MAX): send smaller batches`,
      );
    }
    if (bytes > queueMaxBytes) {
      throw new PayloadTooLargeException(
        `The batch holds about ${bytes} bytes of events; this server queues at most ${queueMaxBytes} (TRACKING_QUEUE_MAX_BYTES): send smaller batches`,
      );
    }
    if (!this.hasRoomFor(count, bytes)) {
      throw new ServiceUnavailableException({
        message: 'The event queue is full; retry shortly',
        headers: { 'retry-after': '1' },
      });
    }
  }

  /** Whether the queue, bounded in rows and in bytes, has room for `count` more rows of `bytes`. */
  private hasRoomFor(count: number, bytes: number): boolean {
    const { queueMax, queueMaxBytes } = this.config.tracking;
    return this.queuedRows + count <= queueMax && this.queuedBytes + bytes <= queueMaxBytes;
  }

  /** Queues rows and resolves with those stored (duplicates left out) once committed. */
  write(rows: EventRow[]): Promise<StoredEvent[]> {
    if (rows.length === 0) return Promise.resolve([]);
    const bytes = jobBytes(rows);
    this.assertRoomFor(rows.length, bytes);
    return new Promise<StoredEvent[]>((resolve, reject) => {
      this.push({ rows, requests: null, bytes, awaited: true, resolve, reject });
    });
  }

  /**
   * Queues an automatic event without waiting; drops (and counts) it when
   * the queue is full. Automatic events share a job: each joins the queue's
   * last job while that is an automatic one of its kind with room. A job per
   * tracked request (with its callbacks) was most of what the queue held on
   * the heap until the commit, and of what the writer's thread was handed. A
   * batch that fails is retried job by job, so such a job fails whole, and
   * all its events count as failed: they are the server's own, built alike,
   * so no one of them fails alone.
   */
  enqueue(row: EventRow): void {
    const bytes = rowBytes(row);
    if (!this.hasRoomFor(1, bytes)) return this.dropAutomatic();
    const last = this.queue.at(-1);
    if (
      last &&
      !last.awaited &&
      !last.requests &&
      last.rows.length < this.config.tracking.batchMax
    ) {
      last.rows.push(row);
      last.bytes += bytes;
      this.queued(1, bytes);
      return;
    }
    this.push(this.automaticJob([row], null, bytes));
  }

  /** Queues a tracked request's `api_request` event, as `enqueue` does (see RequestEventBlock). */
  enqueueRequest(
    actor: RequestActor,
    route: RequestRoute,
    status: number,
    durationMs: number,
    at: number,
  ): void {
    if (!this.hasRoomFor(1, REQUEST_EVENT_BYTES)) return this.dropAutomatic();
    const last = this.queue.at(-1);
    if (last?.requests && last.requests.size < this.config.tracking.batchMax) {
      const bytes = last.requests.add(actor, route, status, durationMs, at);
      last.bytes += bytes;
      this.queued(1, bytes);
      return;
    }
    const requests = new RequestEventBlockBuilder();
    const bytes = requests.add(actor, route, status, durationMs, at);
    this.push(this.automaticJob([], requests, bytes));
  }

  private automaticJob(
    rows: EventRow[],
    requests: RequestEventBlockBuilder | null,
    bytes: number,
  ): Job {
    const job: Job = {
      rows,
      requests,
      bytes,
      awaited: false,
      resolve: () => undefined,
      reject: () => {
        this.failed += sizeOf(job);
      },
    };
    return job;
  }

  private dropAutomatic(): void {
    this.dropped += 1;
    if (this.dropped % 1000 === 1) {
      this.logger.warn(`Event queue full: ${this.dropped} automatic events dropped so far`);
    }
  }

  /**
   * Queues an automatic event (`enqueue` calls one of the enqueue methods)
   * once `decision` resolves true: it waits for an asynchronous policy
   * check. `drain()` waits for pending decisions too.
   */
  enqueueWhen(decision: Promise<boolean>, enqueue: () => void): void {
    const pending: Promise<void> = decision
      .then(
        (allowed) => {
          if (allowed) enqueue();
        },
        () => undefined,
      )
      .finally(() => this.pendingDecisions.delete(pending));
    this.pendingDecisions.add(pending);
  }

  /**
   * Calls `listener` after every commit that stored events without a user,
   * with their sessions: another instance may have logged such a session in
   * while they were still queued here (see TrackingService.attributeLate).
   * `drain()` waits for the listeners too; they handle their own errors.
   */
  onAnonymousCommitted(listener: (sessionIds: string[]) => Promise<void>): void {
    this.anonymousListeners.push(listener);
  }

  stats(): WriterStats {
    return {
      queued: this.queuedRows,
      dropped: this.dropped,
      failed: this.failed,
      rebuiltSummaries: this.rebuiltSummaries,
      writer: this.database.isPostgres ? 'pool' : this.thread ? 'thread' : 'main',
    };
  }

  /**
   * Commits everything queued so far, now (not on the timer), and waits for
   * the anonymous-event listeners those commits started. Events queued
   * meanwhile are not waited for: under steady traffic every request queues
   * one, and a drain that waited for an empty queue (a login stitching its
   * anonymous events, an erasure) took seconds.
   */
  async drain(): Promise<void> {
    // Events whose policy check is still pending are queued when it ends: theirs too.
    if (this.pendingDecisions.size > 0) await Promise.all([...this.pendingDecisions]);
    const target = this.pushed;
    if (this.settled < target) {
      this.drainTarget = Math.max(this.drainTarget, target);
      const reached = new Promise<void>((resolve) =>
        this.drainWaiters.push({ target, reached: resolve }),
      );
      this.startFlush();
      await reached;
    }
    if (this.listening.size > 0) await Promise.all([...this.listening]);
  }

  /** Shutdown: drains until nothing is queued, committing or listening any more. */
  private async drainAll(): Promise<void> {
    for (;;) {
      await this.drain();
      const idle =
        this.queue.length === 0 &&
        !this.flushing &&
        this.pendingDecisions.size === 0 &&
        this.listening.size === 0;
      if (idle) return;
    }
  }

  /** `count` more jobs committed or failed: wakes the drains waiting for them. */
  private settle(count: number): void {
    this.settled += count;
    for (let i = this.drainWaiters.length - 1; i >= 0; i--) {
      if (this.drainWaiters[i].target <= this.settled) {
        this.drainWaiters[i].reached();
        this.drainWaiters.splice(i, 1);
      }
    }
  }

  private push(job: Job): void {
    this.pushed += 1;
    this.queue.push(job);
    if (job.awaited) this.awaitedJobs += 1;
    this.queued(sizeOf(job), job.bytes);
  }

  /** Counts rows just queued, and has them committed: now if a whole batch waits, else on time. */
  private queued(rows: number, bytes: number): void {
    this.queuedRows += rows;
    this.queuedBytes += bytes;
    if (this.queuedRows >= this.config.tracking.batchMax) this.startFlush();
    else if (!this.flushing) this.arm();
    // While a flush runs, it takes the queue up when its commit is done (see flushBatches).
  }

  /**
   * Arms the flush timer: TRACKING_FLUSH_MS while someone waits for a
   * commit, TRACKING_AUTO_FLUSH_MS for automatic events alone. An armed
   * timer is only ever brought forward.
   */
  private arm(): void {
    const { flushMs, autoFlushMs } = this.config.tracking;
    const delay = this.awaitedJobs > 0 ? flushMs : autoFlushMs;
    const due = Date.now() + delay;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    // Unref'd: a queue is drained at shutdown (onClose), not kept alive by its timer.
    this.timer = setTimeout(() => this.startFlush(), delay).unref();
  }

  private startFlush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.flushing) return; // the running flush picks the queue up when done
    void this.flush();
  }

  private flush(): Promise<void> {
    this.flushing = this.flushBatches().finally(() => {
      this.flushing = null;
      if (this.queue.length > 0) this.arm();
    });
    return this.flushing;
  }

  private async flushBatches(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      try {
        const stored = await this.insertJobs(batch);
        batch.forEach((job, i) => job.resolve(stored[i]));
        this.committed(batch, stored.flat());
        this.settle(batch.length);
      } catch (error) {
        await this.retryOneByOne(batch, error);
      }
      // Rows that came in during the commit: explicit writes, and rows a drain waits for, are
      // committed at once; automatic events alone wait for their timer (unless a whole batch
      // is there).
      const waitedFor = this.awaitedJobs > 0 || this.settled < this.drainTarget;
      if (!waitedFor && this.queuedRows < this.config.tracking.batchMax) break;
    }
  }

  /**
   * Tells the live stream what a commit stored, and the anonymous-event
   * listeners which sessions its jobs had events without a user for (from
   * the rows: on SQLite the stored rows come back only for jobs someone
   * waits for).
   */
  private committed(jobs: Job[], stored: StoredEvent[]): void {
    this.live.publish(stored);
    const anonymous = new Set<string>();
    for (const job of jobs) {
      for (const row of job.rows) {
        if (row.userId === null && row.sessionId !== null) anonymous.add(row.sessionId);
      }
      job.requests?.anonymousSessions(anonymous);
    }
    if (anonymous.size === 0) return;
    const sessionIds = [...anonymous];
    for (const listener of this.anonymousListeners) {
      const running = listener(sessionIds).finally(() => this.listening.delete(running));
      this.listening.add(running);
    }
  }

  /** Whole jobs, up to TRACKING_BATCH_MAX rows (a single larger job goes alone). */
  private takeBatch(): Job[] {
    const batch: Job[] = [];
    let rows = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0];
      const size = sizeOf(next);
      if (batch.length > 0 && rows + size > this.config.tracking.batchMax) break;
      batch.push(this.queue.shift()!);
      rows += size;
      this.queuedBytes -= next.bytes;
      if (next.awaited) this.awaitedJobs -= 1;
    }
    this.queuedRows -= rows;
    return batch;
  }

  /** A failed batch is retried job by job, so one bad job cannot fail the others. */
  private async retryOneByOne(batch: Job[], batchError: unknown): Promise<void> {
    if (batch.length === 1) {
      this.logger.error(`Event batch failed: ${(batchError as Error).message}`);
      batch[0].reject(batchError);
      this.settle(1);
      return;
    }
    for (const job of batch) {
      try {
        const [stored] = await this.insertJobs([job]);
        job.resolve(stored);
        this.committed([job], stored);
      } catch (error) {
        this.logger.error(`Event write failed: ${(error as Error).message}`);
        job.reject(error);
      }
      this.settle(1);
    }
  }

  /**
   * One transaction; per job, the rows the database stored. Automatic jobs
   * get their stored rows only while the live stream has watchers (nobody
   * else reads them), which spares an object per tracked request. The
   * stored rows are folded into the session summaries in the same
   * transaction (see SummaryBatch).
   */
  private async insertJobs(jobs: Job[]): Promise<StoredEvent[][]> {
    if (this.database.isPostgres) return this.insertJobsPostgres(jobs);
    const everyRow = this.live.observed;
    const sqliteJobs = jobs.map((job) => ({
      rows: job.rows,
      requests: job.requests?.block ?? null,
      keep: everyRow || job.awaited,
    }));
    const onMain = () =>
      this.database.sqliteTransaction(() => insertSqliteBatch(this.database, sqliteJobs));
    const thread = this.thread;
    const result = thread
      ? await this.database
          .exclusively(() => thread.commit(sqliteJobs))
          .catch((error: unknown) => {
            // The thread ended while this flush waited for the write lock: the jobs never
            // reached it, so the main connection commits them (as it does from now on).
            if (error instanceof WriterThreadGone) return onMain();
            throw error;
          })
      : await onMain();
    this.rebuiltSummaries += result.rebuiltSummaries;
    return jobs.map((job, j) => {
      const ids = result.ids[j];
      return ids.length === 0
        ? []
        : rowsOf(job).flatMap((row, i) => (ids[i] ? [{ ...row, id: ids[i] }] : []));
    });
  }

  private insertJobsPostgres(jobs: Job[]): Promise<StoredEvent[][]> {
    return this.database.transaction(async (manager) => {
      // Rows of users (or anonymous rows of sessions) erased meanwhile are dropped (see
      // DatabaseService.missingUsers and missingSessions).
      const jobRows = jobs.map(rowsOf);
      const gone = new GoneOwners(
        await this.database.missingUsers(usersOf(jobRows), manager),
        await this.database.missingSessions(anonymousSessionsOf(jobRows), manager),
      );
      const summaries = new SummaryBatch();
      const result: StoredEvent[][] = [];
      for (const allRows of jobRows) {
        const stored: StoredEvent[] = [];
        const rows = gone.none ? allRows : allRows.filter((row) => !gone.owns(row));
        for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
          const chunk = rows.slice(start, start + ROWS_PER_STATEMENT);
          const returned = await this.database.query<{ id: number; event_id: string }>(
            `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${chunk.map(() => EVENT_PLACEHOLDERS).join(', ')}
             ${SKIP_RESENT} RETURNING id, event_id`,
            chunk.flatMap(eventValues),
            manager,
          );
          // A job has one sender, so its stored event ids are unique within a chunk.
          const ids = new Map(returned.map((r) => [r.event_id, Number(r.id)]));
          for (const row of chunk) {
            const id = ids.get(row.eventId);
            if (id !== undefined) {
              stored.push({ ...row, id });
              summaries.add(row, id);
              ids.delete(row.eventId); // an id repeated within one request is stored once
            }
          }
        }
        result.push(stored);
      }
      this.rebuiltSummaries += await summaries.apply(this.database, manager);
      // Other instances stream these events too (delivered at commit; see LiveEventStream).
      const ids = result.flatMap((stored) => stored.map((event) => event.id));
      for (const [sql, params] of this.live.notifications(ids)) {
        await this.database.query(sql, params, manager);
      }
      return result;
    });
  }
}
