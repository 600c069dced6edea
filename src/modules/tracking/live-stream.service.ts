import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { Observable, Subject } from 'rxjs';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import type { StoredEvent } from './event-row.js';

/** The PostgreSQL notification channel that tells other instances which events committed. */
const CHANNEL = 'live_events';
/** Event ids per notification: well under PostgreSQL's 8,000-byte payload limit. */
const IDS_PER_NOTIFICATION = 500;

interface Relayed {
  from: string;
  ids: number[];
}

/**
 * Committed events, as they commit, for the admin live stream.
 *
 * With several app instances on one PostgreSQL database, each instance's
 * writer also sends the ids it committed as a notification in the same
 * transaction (delivered at commit, `notifications`); every instance listens
 * on a connection of its own and, while one of its streams is open, reads
 * the other instances' events by id and streams them too. So a stream shows
 * every stored event, whichever instance wrote it.
 */
@Injectable()
export class LiveEventStream implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(LiveEventStream.name);
  private readonly subject = new Subject<StoredEvent>();
  private readonly instanceId = randomUUID();
  private listener: Client | null = null;
  private closing = false;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
  ) {}

  /** Open streams would hold the server open at shutdown: end them first. */
  async onModuleInit(): Promise<void> {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('preClose', (done) => {
      this.subject.complete();
      done();
    });
    if (this.database.isPostgres) await this.listen();
  }

  async onModuleDestroy(): Promise<void> {
    this.closing = true;
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }

  get events(): Observable<StoredEvent> {
    return this.subject.asObservable();
  }

  /** Whether any stream is open (publishing is pointless otherwise). */
  get observed(): boolean {
    return this.subject.observed;
  }

  publish(events: StoredEvent[]): void {
    if (!this.subject.observed) return;
    for (const event of events) this.subject.next(event);
  }

  /**
   * PostgreSQL: `[sql, params]` statements that tell the other instances
   * about `ids`, to run inside the transaction that wrote them (a
   * notification is delivered only if, and when, it commits).
   */
  notifications(ids: number[]): [string, unknown[]][] {
    const statements: [string, unknown[]][] = [];
    for (let start = 0; start < ids.length; start += IDS_PER_NOTIFICATION) {
      const payload: Relayed = {
        from: this.instanceId,
        ids: ids.slice(start, start + IDS_PER_NOTIFICATION),
      };
      statements.push(['SELECT pg_notify(?, ?)', [CHANNEL, JSON.stringify(payload)]]);
    }
    return statements;
  }

  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.config.database.url });
    client.on('notification', (message) => void this.relay(message.payload));
    client.on('error', (error) => {
      this.logger.warn(`Live stream listener failed (${error.message}); reconnecting`);
      void client.end().catch(() => undefined);
      if (this.listener === client) this.listener = null;
      this.reconnect(1000);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      // The caller retries: this client must not schedule a retry of its own as well.
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      throw error;
    }
    this.listener = client;
  }

  /**
   * Listens again after `delayMs`, and keeps trying (doubling the delay up
   * to a minute) while it fails: a failed connect emits no `error` event, so
   * one attempt during a database restart left this instance's streams
   * without the other instances' events until it restarted.
   */
  private reconnect(delayMs: number): void {
    if (this.closing) return;
    const timer = setTimeout(() => {
      this.listen().then(
        () => this.logger.log('Live stream listener reconnected'),
        (error: Error) => {
          this.logger.warn(`Live stream listener could not reconnect (${error.message})`);
          this.reconnect(Math.min(delayMs * 2, 60_000));
        },
      );
    }, delayMs);
    timer.unref();
  }

  /** Streams the events another instance committed, while a stream is open here. */
  private async relay(payload: string | undefined): Promise<void> {
    if (!payload || !this.subject.observed) return;
    let relayed: Relayed;
    try {
      relayed = JSON.parse(payload) as Relayed;
    } catch {
      return;
    }
    if (relayed.from === this.instanceId || !Array.isArray(relayed.ids)) return;
    const ids = relayed.ids.filter((id) => Number.isSafeInteger(id));
    if (ids.length === 0) return;
    try {
      const rows = await this.database.query<{
        id: number;
        event_id: string;
        dedupe_key: string | null;
        user_id: string | null;
        session_id: string | null;
        type: StoredEvent['type'];
        name: string | null;
        path: string | null;
        properties: string | null;
        ip: string | null;
        user_agent: string | null;
        occurred_at: number;
        received_at: number;
      }>(`SELECT * FROM events WHERE id IN (${ids.map(() => '?').join(', ')}) ORDER BY id`, ids);
      this.publish(
        rows.map((r) => ({
          id: Number(r.id),
          eventId: r.event_id,
          dedupeKey: r.dedupe_key,
          userId: r.user_id,
          sessionId: r.session_id,
          type: r.type,
          name: r.name,
          path: r.path,
          properties: r.properties,
          ip: r.ip,
          userAgent: r.user_agent,
          occurredAt: Number(r.occurred_at),
          receivedAt: Number(r.received_at),
        })),
      );
    } catch (error) {
      this.logger.warn(`Could not read relayed events: ${(error as Error).message}`);
    }
  }
}
