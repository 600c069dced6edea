import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { EntityManager } from 'typeorm';
import { AUDIT_EVENT, AuditRecord } from '../../common/audit.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { decodeCursor, DEFAULT_PAGE_SIZE, toPage } from '../../common/pagination/pagination.js';
import { toIso } from '../../common/time.js';

interface AuditRow {
  id: number;
  actor_type: string;
  actor_user_id: string | null;
  action: string;
  target_user_id: string | null;
  details: string | null;
  session_id: string | null;
  request_id: string | null;
  created_at: number;
}

const toDto = (r: AuditRow) => ({
  id: Number(r.id),
  actor_type: r.actor_type,
  actor_user_id: r.actor_user_id,
  action: r.action,
  target_user_id: r.target_user_id,
  details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  session_id: r.session_id,
  request_id: r.request_id,
  created_at: toIso(Number(r.created_at)),
});

/** The append-only audit log: written from AUDIT_EVENT records, read by admins. */
@Injectable()
export class AuditService {
  private readonly logger = new Logger(AuditService.name);

  constructor(private readonly database: DatabaseService) {}

  @OnEvent(AUDIT_EVENT, { promisify: true })
  async onRecord(record: AuditRecord): Promise<void> {
    try {
      await this.database.transaction((manager) => this.record(record, manager));
    } catch (error) {
      this.logger.error(
        `Could not write audit record "${record.action}": ${(error as Error).message}`,
      );
    }
  }

  async record(record: AuditRecord, manager: EntityManager): Promise<void> {
    // Most entries are written after the action's own commit (AUDIT_EVENT), so an entry
    // about a user erased in between would name them again: it is anonymised the way
    // the erasure anonymises the entries it finds (see eraseUser).
    const named = [record.actorUserId, record.targetUserId].filter((id) => id !== null);
    const erased = named.length
      ? await this.database.missingUsers(named, manager)
      : new Set<string>();
    const isErased = (id: string | null) => id !== null && erased.has(id);
    const actorUserId = isErased(record.actorUserId) ? null : record.actorUserId;
    const targetUserId = isErased(record.targetUserId) ? null : record.targetUserId;
    const anonymised = erased.size > 0;
    const sessionId = anonymised && actorUserId === null ? null : (record.sessionId ?? null);
    await this.database.executeIn(
      manager,
      `INSERT INTO audit_log (actor_type, actor_user_id, action, target_user_id, details, session_id, request_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        record.actorType,
        actorUserId,
        record.action,
        targetUserId,
        record.details ? JSON.stringify(record.details) : null,
        sessionId,
        record.requestId ?? null,
        Date.now(),
      ],
    );
  }

  async list(query: { action?: string; userId?: string; limit?: number; cursor?: string }) {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.action) {
      where.push('action = ?');
      params.push(query.action);
    }
    if (query.userId) {
      where.push('(target_user_id = ? OR actor_user_id = ?)');
      params.push(query.userId, query.userId);
    }
    if (query.cursor) {
      const [id] = decodeCursor(query.cursor, ['id']);
      where.push('id < ?');
      params.push(id);
    }
    const rows = await this.database.query<AuditRow>(
      `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      [...params, limit + 1],
    );
    return toPage(rows, limit, (r) => [Number(r.id)], toDto);
  }

  /** Entries about a user, oldest first, for exports. */
  /**
   * The entries about the user or by them, for their export. An export must
   * not disclose other people (Art. 15(4)): the other party of an entry
   * loses its ids, and an entry about someone else its details, which
   * describe that person. What happened and when stays.
   */
  async exportUser(userId: string) {
    const rows = await this.database.query<AuditRow>(
      'SELECT * FROM audit_log WHERE target_user_id = ? OR actor_user_id = ? ORDER BY id',
      [userId, userId],
    );
    return rows.map((row) => {
      const byOther = row.actor_user_id !== null && row.actor_user_id !== userId;
      const aboutOther = row.target_user_id !== null && row.target_user_id !== userId;
      return toDto({
        ...row,
        actor_user_id: byOther ? null : row.actor_user_id,
        session_id: byOther ? null : row.session_id,
        // A client may choose its request ids (X-Request-Id): one could name the other party.
        request_id: byOther ? null : row.request_id,
        target_user_id: aboutOther ? null : row.target_user_id,
        details: aboutOther ? null : row.details,
      });
    });
  }

  /** Erasure: the entries stay, without the user's ids or their sessions' ids. */
  async eraseUser(userId: string, manager: EntityManager): Promise<number> {
    return this.database.executeIn(
      manager,
      // session_id is the acting session: the user's own (or an anonymous/system one) goes;
      // an admin's, on an entry about what that admin did to the user, stays accountable.
      `UPDATE audit_log SET
         actor_user_id = CASE WHEN actor_user_id = ? THEN NULL ELSE actor_user_id END,
         target_user_id = CASE WHEN target_user_id = ? THEN NULL ELSE target_user_id END,
         session_id = CASE WHEN actor_user_id IS NULL OR actor_user_id = ? THEN NULL ELSE session_id END
       WHERE actor_user_id = ? OR target_user_id = ?`,
      [userId, userId, userId, userId, userId],
    );
  }

  /** Retention: deletes up to `batch` entries older than `cutoff`. */
  deleteBefore(cutoff: number, batch: number): Promise<number> {
    return this.database.deleteOlderThan('audit_log', 'created_at', cutoff, batch);
  }
}
