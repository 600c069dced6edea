import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { DatabaseService } from '../../common/database/database.service.js';
import { decodeCursor, DEFAULT_PAGE_SIZE, toPage } from '../../common/pagination/pagination.js';
import { toIso } from '../../common/time.js';
import { SessionEventPageDto } from './dto/session.dto.js';
import { SessionEvent, SessionEventType } from './entities/session-event.entity.js';

export interface SessionEventInput {
  sessionId: string;
  userId: string | null;
  type: SessionEventType;
  reason?: string | null;
  ip?: string | null;
  at: number;
}

/** The append-only log of session lifecycle changes. */
@Injectable()
export class SessionEventsService {
  constructor(
    @InjectRepository(SessionEvent) private readonly events: Repository<SessionEvent>,
    private readonly database: DatabaseService,
  ) {}

  /** Appends inside the caller's transaction, so the log and the change commit together. */
  async record(manager: EntityManager, inputs: SessionEventInput[]): Promise<void> {
    if (inputs.length === 0) return;
    await manager.insert(
      SessionEvent,
      inputs.map((e) => ({
        sessionId: e.sessionId,
        userId: e.userId,
        type: e.type,
        reason: e.reason ?? null,
        ip: e.ip ?? null,
        createdAt: e.at,
      })),
    );
  }

  /** Retention: deletes up to `batch` events older than `cutoff`. */
  deleteBefore(cutoff: number, batch: number): Promise<number> {
    return this.database.deleteOlderThan('session_events', 'created_at', cutoff, batch);
  }

  /** A user's session events, oldest first, for exports. */
  async exportUser(userId: string) {
    const rows = await this.database.query<{
      session_id: string;
      type: string;
      reason: string | null;
      ip: string | null;
      created_at: number;
    }>(
      'SELECT session_id, type, reason, ip, created_at FROM session_events WHERE user_id = ? ORDER BY id',
      [userId],
    );
    return rows.map((r) => ({ ...r, created_at: toIso(Number(r.created_at)) }));
  }

  async list(query: {
    userId?: string;
    limit?: number;
    cursor?: string;
  }): Promise<SessionEventPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const qb = this.events
      .createQueryBuilder('e')
      .orderBy('e.id', 'DESC')
      .take(limit + 1);
    if (query.userId) qb.andWhere('e.userId = :userId', { userId: query.userId });
    if (query.cursor) {
      const [id] = decodeCursor(query.cursor, ['id']);
      qb.andWhere('e.id < :id', { id });
    }
    const rows = await qb.getMany();
    return toPage(
      rows,
      limit,
      (e) => [e.id],
      (e) => ({
        id: e.id,
        type: e.type,
        reason: e.reason,
        session_id: e.sessionId,
        user_id: e.userId,
        ip_address: e.ip,
        created_at: toIso(e.createdAt),
      }),
    );
  }
}
