import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { AppConfig } from '../../common/config/config.js';
import { assertRangeOrder } from '../../common/dto/time-range.dto.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { boundedMemo } from '../../common/bounded-memo.js';
import { anonymizeIp } from '../../common/http/ip-anonymize.js';
import type { RequestIdentity } from '../../common/http/request-context.js';
import { decodeCursor, DEFAULT_PAGE_SIZE, toPage } from '../../common/pagination/pagination.js';
import { toIso } from '../../common/time.js';
import type { ClientMeta } from '../session/session.service.js';
import {
  ActivitiesQueryDto,
  ActivityPageDto,
  BatchEventDto,
  BatchResultDto,
  RejectedEventDto,
} from './dto/tracking.dto.js';
import { Event, EventType } from './entities/event.entity.js';
import { dedupeKey, EventRow } from './event-row.js';
import { EventWriter } from './event-writer.js';
import { normalizePagePath, NOT_A_PAGE } from './page-path.js';
import type { RequestActor, RequestRoute } from './request-events.js';
import { SessionSummaries } from './session-summaries.service.js';
import { TrackingPolicy } from './tracking-policy.js';

/** Who caused an event and from where. */
export interface TrackingActor {
  userId: string | null;
  sessionId: string;
  ip: string | null;
  userAgent: string | null;
}

export interface EventInput {
  type: EventType;
  name?: string | null;
  path?: string | null;
  properties?: Record<string, unknown> | null;
  eventId?: string;
  occurredAt?: number;
}

/** Client timestamps are accepted within [now - 7 days, now + 5 minutes] (see acceptedPastDays). */
const MAX_PAST_DAYS = 7;
const DAY_MS = 24 * 3600 * 1000;
const MAX_FUTURE_MS = 5 * 60 * 1000;

/**
 * Anonymised form by address: requests come from few addresses at a time,
 * and anonymising took about a tenth of building an automatic event's row
 * (profile of the tracked route).
 */
const anonymizedIp = boundedMemo(anonymizeIp, 1024);

@Injectable()
export class TrackingService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(TrackingService.name);

  constructor(
    private readonly writer: EventWriter,
    private readonly policy: TrackingPolicy,
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly summaries: SessionSummaries,
  ) {}

  onModuleInit(): void {
    this.writer.onAnonymousCommitted((sessionIds) =>
      this.attributeLate(sessionIds).catch((error: Error) =>
        this.logger.error(`Late identity stitching failed: ${error.message}`),
      ),
    );
  }

  /**
   * Finishes the identity stitching that logins left undone: the login
   * commits first (and flags its upgraded session `stitch_pending`), the
   * stitching follows in a transaction of its own, and a crash or a failure
   * in between left the session's events anonymous for good. After the
   * policies registered (consent, privacy settings decide whether to
   * attribute or delete), before the server listens.
   */
  async onApplicationBootstrap(): Promise<void> {
    const pending = await this.database.query<{ id: string; user_id: string }>(
      'SELECT id, user_id FROM sessions WHERE stitch_pending = TRUE AND user_id IS NOT NULL',
    );
    for (const session of pending) await this.attribute(session.id, session.user_id);
    if (pending.length > 0) {
      this.logger.warn(`Finished the identity stitching of ${pending.length} session(s)`);
    }
  }

  /**
   * Stores one explicit event and resolves after it committed. Returns the
   * event id, or null when consent or privacy settings forbid storing it.
   */
  async trackOne(actor: TrackingActor, input: EventInput): Promise<string | null> {
    if (!(await this.policy.allows(actor))) return null;
    const row = this.toRow(actor, input, Date.now());
    await this.writer.write([row]);
    return row.eventId;
  }

  /** Validates each event on its own; stores the valid ones in one commit. */
  async trackBatch(actor: TrackingActor, events: unknown[]): Promise<BatchResultDto> {
    const now = Date.now();
    const rejected: RejectedEventDto[] = [];
    const rows: EventRow[] = [];
    events.forEach((raw, index) => {
      const result = this.parseBatchEvent(raw, now);
      if (typeof result === 'string') rejected.push({ index, reason: result });
      else rows.push(this.toRow(actor, result, now));
    });
    if (rows.length > 0 && !(await this.policy.allows(actor))) {
      return { accepted: 0, duplicates: 0, skipped: rows.length, rejected };
    }
    // Events from before analytics became allowed (again) are not stored: a withdrawal
    // covers what happened while it stood, whenever the client sends it.
    const since =
      actor.userId && rows.length > 0 ? await this.policy.allowedSince(actor.userId) : 0;
    const allowed = since === 0 ? rows : rows.filter((row) => row.occurredAt >= since);
    const stored = allowed.length > 0 ? await this.writer.write(allowed) : [];
    return {
      accepted: stored.length,
      duplicates: allowed.length - stored.length,
      skipped: rows.length - allowed.length,
      rejected,
    };
  }

  /** 413 or 503 now if `count` explicit events could not be queued (see EventWriter.assertRoomFor). */
  assertRoomFor(count: number): void {
    this.writer.assertRoomFor(count);
  }

  /** Server-side events (a login, a logout): queued, never awaited. */
  record(actor: TrackingActor, input: EventInput): void {
    const decision = this.policy.allows(actor);
    if (decision === false) return;
    const row = this.toRow(actor, input, Date.now(), false);
    if (decision === true) this.writer.enqueue(row);
    else this.writer.enqueueWhen(decision, () => this.writer.enqueue(row));
  }

  /**
   * A tracked request's `api_request` event (see RequestTracker): queued,
   * never awaited, and kept column-wise until the writer inserts it (see
   * RequestEventBlock). Nothing for a request without a session.
   */
  recordRequest(
    who: RequestIdentity,
    client: ClientMeta,
    route: RequestRoute,
    status: number,
    durationMs: number,
  ): void {
    if (who.sessionId === null) return;
    const actor: RequestActor = {
      userId: who.userId,
      sessionId: who.sessionId,
      ip: this.storedIp(client.ip),
      userAgent: client.userAgent,
    };
    const decision = this.policy.allows(actor);
    if (decision === false) return;
    if (decision === true) {
      this.writer.enqueueRequest(actor, route, status, durationMs, Date.now());
    } else {
      this.recordRequestWhen(decision, actor, route, status, durationMs);
    }
  }

  /** recordRequest after an asynchronous policy check (its closure kept off the common path). */
  private recordRequestWhen(
    decision: Promise<boolean>,
    actor: RequestActor,
    route: RequestRoute,
    status: number,
    durationMs: number,
  ): void {
    const at = Date.now();
    this.writer.enqueueWhen(decision, () =>
      this.writer.enqueueRequest(actor, route, status, durationMs, at),
    );
  }

  /** The address as events store it (IP_ANONYMIZATION). */
  private storedIp(ip: string | null): string | null {
    return this.config.tracking.ipAnonymization ? anonymizedIp(ip) : ip;
  }

  /**
   * Identity stitching: attributes an anonymous session's events to the
   * user who logged in with it, once the events queued here committed.
   * Events another instance still held then are attributed when they commit
   * (attributeLate). Returns how many events were attributed.
   */
  async stitch(sessionId: string, userId: string): Promise<number> {
    await this.writer.drain();
    return this.attribute(sessionId, userId);
  }

  /**
   * Anonymous events that committed after their session was logged in: the
   * login's stitching (on whichever instance served it) waited only for its
   * own instance's queue, so events another instance still held then arrive
   * afterwards (automatic ones wait up to TRACKING_AUTO_FLUSH_MS). Each
   * commit with anonymous events looks their sessions up; the few that now
   * belong to a user are stitched again. Nothing is missed in between: the
   * login's stitching sees every event committed before its UPDATE began,
   * and this lookup runs after the commit, so after any login it missed.
   */
  private async attributeLate(sessionIds: string[]): Promise<void> {
    const upgraded = await this.database.queryInChunks<{ id: string; user_id: string }>(
      sessionIds,
      (list) => `SELECT id, user_id FROM sessions WHERE id IN (${list}) AND user_id IS NOT NULL`,
    );
    for (const session of upgraded) await this.attribute(session.id, session.user_id);
  }

  /**
   * The session's anonymous events become the user's. When the user does
   * not allow analytics (consent, privacy setting), they are deleted
   * instead: tied to the user through their session they would be personal
   * data, kept against the user's choice.
   */
  private async attribute(sessionId: string, userId: string): Promise<number> {
    // Cleared in the transaction that does the work, so that a crash leaves the flag for
    // start-up. Both transactions take the user's lock first (missingUsers), as the erasure
    // does, so that neither can wait for the other while holding what it needs (PostgreSQL).
    const done = (manager: EntityManager) =>
      this.database.executeIn(
        manager,
        'UPDATE sessions SET stitch_pending = FALSE WHERE id = ? AND stitch_pending = TRUE',
        [sessionId],
      );
    if (!(await this.policy.allows({ userId, sessionId }))) {
      await this.database.transaction(async (manager) => {
        // Erased meanwhile: the erasure deleted the session's events already.
        if ((await this.database.missingUsers([userId], manager)).size > 0) return;
        await this.database.executeIn(
          manager,
          'DELETE FROM events WHERE session_id = ? AND user_id IS NULL',
          [sessionId],
        );
        await this.summaries.rebuild([sessionId], manager);
        await done(manager);
      });
      return 0;
    }
    return this.database.transaction(async (manager) => {
      // Stitching runs after the login committed: an erasure (or a revocation) may have
      // come in between. Under the user lock (the erasure's, see DatabaseService.missingUsers)
      // the session must still be this user's, or the erased id would be written back.
      if ((await this.database.missingUsers([userId], manager)).size > 0) return 0;
      const [owned] = await this.database.query<{ id: string }>(
        'SELECT id FROM sessions WHERE id = ? AND user_id = ?',
        [sessionId, userId],
        manager,
      );
      if (!owned) return 0;
      // The client event ids become the user's (dedupeKey: `s:<session>:` -> `u:<user>:`), so
      // a batch resent after login counts as duplicates instead of being stored again. An id
      // the user already used elsewhere keeps its session key: both events stay stored.
      // (`events.event_id`: unqualified, it would name the subquery's row.)
      const userKey = `'u:' || ? || ':' || events.event_id`;
      const stitched = await this.database.executeIn(
        manager,
        `UPDATE events SET user_id = ?, dedupe_key = CASE
           WHEN dedupe_key IS NULL THEN NULL
           WHEN EXISTS (SELECT 1 FROM events taken WHERE taken.dedupe_key = ${userKey}) THEN dedupe_key
           ELSE ${userKey} END
         WHERE session_id = ? AND user_id IS NULL`,
        [userId, userId, userId, sessionId],
      );
      await this.summaries.attribute(sessionId, userId, manager);
      await done(manager);
      return stitched;
    });
  }

  /**
   * Deletes a user's events, and any still-anonymous events of their sessions,
   * inside the erasure transaction. Returns how many rows went.
   */
  async eraseUser(userId: string, sessionIds: string[], manager: EntityManager): Promise<number> {
    let deleted = await this.database.executeIn(manager, 'DELETE FROM events WHERE user_id = ?', [
      userId,
    ]);
    deleted += await this.database.executeInChunks(
      manager,
      sessionIds,
      (list) => `DELETE FROM events WHERE session_id IN (${list})`,
    );
    await this.summaries.forget(userId, sessionIds, manager);
    return deleted;
  }

  /** Public session ids the user's events mention (some may be gone from the sessions table). */
  async sessionIdsOf(userId: string, manager?: EntityManager): Promise<string[]> {
    const rows = await this.database.query<{ session_id: string }>(
      'SELECT DISTINCT session_id FROM events WHERE user_id = ? AND session_id IS NOT NULL',
      [userId],
      manager,
    );
    return rows.map((r) => r.session_id);
  }

  /** Every event of a user in id order, a page at a time (bounded memory for exports). */
  async *exportUser(userId: string): AsyncGenerator<Record<string, unknown>> {
    let after = 0;
    for (;;) {
      const rows = await this.database.query<{
        id: number;
        event_id: string;
        type: string;
        name: string | null;
        path: string | null;
        properties: string | null;
        session_id: string | null;
        ip: string | null;
        user_agent: string | null;
        occurred_at: number;
        received_at: number;
      }>(
        `SELECT id, event_id, type, name, path, properties, session_id, ip, user_agent, occurred_at, received_at
         FROM events WHERE user_id = ? AND id > ? ORDER BY id LIMIT 1000`,
        [userId, after],
      );
      for (const r of rows) {
        yield {
          event_id: r.event_id,
          type: r.type,
          name: r.name,
          page: r.path,
          properties: r.properties ? (JSON.parse(r.properties) as unknown) : null,
          session_id: r.session_id,
          ip_address: r.ip,
          user_agent: r.user_agent,
          occurred_at: toIso(Number(r.occurred_at)),
          received_at: toIso(Number(r.received_at)),
        };
      }
      if (rows.length < 1000) return;
      after = Number(rows[rows.length - 1].id);
    }
  }

  /**
   * Retention: deletes up to `batch` events older than `cutoff` and
   * recomputes the summaries of their sessions, in one transaction; returns
   * how many events went.
   */
  deleteBefore(cutoff: number, batch: number): Promise<number> {
    return this.database.transaction(async (manager) => {
      const doomed = await this.database.query<{ id: number; session_id: string | null }>(
        `SELECT id, session_id FROM events WHERE occurred_at < ? LIMIT ${Math.floor(batch)}`,
        [cutoff],
        manager,
      );
      const deleted = await this.database.executeInChunks(
        manager,
        doomed.map((r) => r.id),
        (list) => `DELETE FROM events WHERE id IN (${list})`,
      );
      const sessions = doomed.flatMap((r) => (r.session_id === null ? [] : [r.session_id]));
      await this.summaries.rebuild(sessions, manager);
      return deleted;
    });
  }

  /** A user's events, newest first, keyset-paginated on (occurred_at, id). */
  async listActivities(userId: string, query: ActivitiesQueryDto): Promise<ActivityPageDto> {
    if (query.from && query.to) assertRangeOrder(Date.parse(query.from), Date.parse(query.to));
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const qb = this.database.dataSource
      .getRepository(Event)
      .createQueryBuilder('e')
      .where('e.userId = :userId', { userId })
      .orderBy('e.occurredAt', 'DESC')
      .addOrderBy('e.id', 'DESC')
      .take(limit + 1);
    if (query.type) qb.andWhere('e.type = :type', { type: query.type });
    if (query.name) qb.andWhere('e.name = :name', { name: query.name });
    if (query.session_id) qb.andWhere('e.sessionId = :sessionId', { sessionId: query.session_id });
    if (query.from) qb.andWhere('e.occurredAt >= :from', { from: Date.parse(query.from) });
    if (query.to) qb.andWhere('e.occurredAt < :to', { to: Date.parse(query.to) });
    if (query.cursor) {
      const [occurredAt, id] = decodeCursor(query.cursor, ['time', 'id']);
      qb.andWhere('(e.occurredAt < :cAt OR (e.occurredAt = :cAt AND e.id < :cId))', {
        cAt: occurredAt,
        cId: id,
      });
    }
    const rows = await qb.getMany();
    return toPage(
      rows,
      limit,
      (e) => [e.occurredAt, e.id],
      (e) => ({
        id: e.id,
        event_id: e.eventId,
        type: e.type,
        name: e.name,
        page: e.path,
        properties: e.properties ? (JSON.parse(e.properties) as Record<string, unknown>) : null,
        session_id: e.sessionId,
        occurred_at: toIso(e.occurredAt),
      }),
    );
  }

  /** `deduplicated`: false for server-made events, which cannot be resent (no dedupe key). */
  private toRow(
    actor: TrackingActor,
    input: EventInput,
    now: number,
    deduplicated = true,
  ): EventRow {
    const eventId = input.eventId ?? randomUUID();
    return {
      eventId,
      dedupeKey: deduplicated ? dedupeKey(actor.userId, actor.sessionId, eventId) : null,
      userId: actor.userId,
      sessionId: actor.sessionId,
      type: input.type,
      name: input.name ?? null,
      path: input.path ?? null,
      properties: input.properties ? JSON.stringify(input.properties) : null,
      ip: this.storedIp(actor.ip),
      userAgent: actor.userAgent,
      occurredAt: input.occurredAt ?? now,
      receivedAt: now,
    };
  }

  /**
   * How far back a client timestamp may lie: 7 days, or less when event
   * retention is shorter (an event the retention job just deleted must not be
   * accepted and stored again).
   */
  private acceptedPastDays(): number {
    const retention = this.config.compliance.retention.eventsDays;
    return retention > 0 ? Math.min(MAX_PAST_DAYS, retention) : MAX_PAST_DAYS;
  }

  /** An EventInput, or the reason the event is rejected. */
  private parseBatchEvent(raw: unknown, now: number): EventInput | string {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      return 'an event must be a JSON object';
    }
    const dto = plainToInstance(BatchEventDto, raw);
    const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
    if (errors.length > 0) {
      return errors.flatMap((e) => Object.values(e.constraints ?? {})).join('; ');
    }
    if ((dto.type === 'action' || dto.type === 'custom') && !dto.name) {
      return `name is required for ${dto.type} events`;
    }
    // Any event may say on which page it happened (an error, an action); page views must.
    if (dto.type === 'page_view' && !dto.page) return 'page is required for page_view events';
    const path = dto.page === undefined ? null : normalizePagePath(dto.page);
    if (dto.page !== undefined && !path) return `page ${NOT_A_PAGE}`;
    let occurredAt: number | undefined;
    if (dto.occurred_at) {
      occurredAt = Date.parse(dto.occurred_at);
      const pastDays = this.acceptedPastDays();
      if (occurredAt < now - pastDays * DAY_MS || occurredAt > now + MAX_FUTURE_MS) {
        return `occurred_at must be within the last ${pastDays} day${pastDays === 1 ? '' : 's'} and at most 5 minutes ahead`;
      }
    }
    return {
      type: dto.type,
      name: dto.name ?? null,
      path,
      properties: dto.properties ?? null,
      eventId: dto.event_id,
      occurredAt,
    };
  }
}
