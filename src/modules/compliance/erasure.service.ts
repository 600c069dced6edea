import { Injectable, Logger, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuditContext } from '../../common/audit.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { WalCheckpointer } from '../../common/database/wal-checkpointer.js';
import { toIso } from '../../common/time.js';
import { PreferencesService } from '../preferences/preferences.service.js';
import { SessionService } from '../session/session.service.js';
import { EventWriter } from '../tracking/event-writer.js';
import { TrackingService } from '../tracking/tracking.service.js';
import { NO_SUCH_USER, UsersService } from '../users/users.service.js';
import { AuditService } from './audit.service.js';
import { ConsentService } from './consent.service.js';

/** Tables and the columns that may hold a user's id; all must be empty of it after erasure. */
const USER_ID_COLUMNS: [string, string][] = [
  ['users', 'id'],
  ['sessions', 'user_id'],
  ['session_events', 'user_id'],
  ['events', 'user_id'],
  ['session_summaries', 'user_id'],
  ['user_preferences', 'user_id'],
  ['consents', 'user_id'],
  ['audit_log', 'actor_user_id'],
  ['audit_log', 'target_user_id'],
];

/**
 * Right to be forgotten: one transaction in which every owning module
 * deletes the user's data; any failure rolls all of it back. What remains is
 * a receipt with counts and no personal data.
 */
@Injectable()
export class ErasureService {
  private readonly logger = new Logger(ErasureService.name);

  constructor(
    private readonly database: DatabaseService,
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly tracking: TrackingService,
    private readonly writer: EventWriter,
    private readonly preferences: PreferencesService,
    private readonly consents: ConsentService,
    private readonly audit: AuditService,
    private readonly checkpointer: WalCheckpointer,
  ) {}

  async erase(userId: string, requestedBy: 'self' | 'admin', context: AuditContext) {
    await this.users.findExisting(userId);
    const startedAt = Date.now();
    // Events already queued for the user land first, so the receipt counts them among the
    // deleted; anything queued later is dropped by the writer once the user is gone.
    await this.writer.drain();
    const receiptId = randomUUID();
    const result = await this.database.transaction(async (manager) => {
      // PostgreSQL: the user row is locked before anything is deleted, so an event batch
      // still being written for them (another instance, another device) either commits
      // first and is deleted below, or waits and finds the user gone (see EventWriter).
      // SQLite runs one transaction at a time.
      await this.database.lockRow(manager, 'users', userId);
      // Checked again under the lock: of parallel erasures of one account only the first
      // erases (and writes a receipt); the others find no user.
      if ((await this.database.missingUsers([userId], manager)).size > 0) {
        throw new NotFoundException(NO_SUCH_USER);
      }
      // The user's sessions are locked as well, before any event is read: an anonymous
      // event of an upgraded session that another instance still held either commits
      // first and is deleted below, or waits and finds its session gone (EventWriter).
      const ownSessions = await this.sessions.sessionIdsOf(userId, manager, { lock: true });
      // Every session the user's events mention or the sessions table lists: an upgraded
      // anonymous session can hold events not yet attributed to the user.
      const sessionIds = [
        ...new Set([...(await this.tracking.sessionIdsOf(userId, manager)), ...ownSessions]),
      ];
      const activities = await this.tracking.eraseUser(userId, sessionIds, manager);
      const sessionCounts = await this.sessions.eraseUser(userId, sessionIds, manager);
      const preferences = await this.preferences.eraseUser(userId, manager);
      const consents = await this.consents.eraseUser(userId, manager);
      const auditEntries = await this.audit.eraseUser(userId, manager);
      const accounts = await this.users.eraseUser(userId, manager);
      const counts = {
        accounts,
        sessions: sessionCounts.sessions,
        session_data: sessionCounts.sessionData,
        session_events: sessionCounts.sessionEvents,
        activities,
        preferences,
        consents,
        audit_entries_anonymised: auditEntries,
      };
      let remaining = 0;
      for (const [table, column] of USER_ID_COLUMNS) {
        const [row] = await this.database.query<{ n: number }>(
          `SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`,
          [userId],
          manager,
        );
        remaining += Number(row?.n ?? 0);
      }
      const finishedAt = Date.now();
      await this.database.executeIn(
        manager,
        'INSERT INTO erasure_receipts (id, requested_by, counts, verified, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)',
        [receiptId, requestedBy, JSON.stringify(counts), remaining === 0, startedAt, finishedAt],
      );
      // The trail of the erasure itself names no one: only the receipt.
      await this.audit.record(
        {
          actorType: context.actorType,
          actorUserId: requestedBy === 'admin' ? context.actorUserId : null,
          action: 'erasure',
          targetUserId: null,
          details: { receipt_id: receiptId, requested_by: requestedBy },
          sessionId: requestedBy === 'admin' ? context.sessionId : null,
          requestId: context.requestId,
        },
        manager,
      );
      return { counts, finishedAt, verified: remaining === 0 };
    });
    this.logger.log(`Erasure ${receiptId} done (${requestedBy}), verified: ${result.verified}`);
    // SQLite: the deleted rows were overwritten in place (secure_delete); their earlier
    // versions in the WAL file go too before the answer. Rare enough to wait for.
    if (!(await this.checkpointer.purge())) {
      this.logger.warn(
        `Erasure ${receiptId}: the WAL could not be emptied yet (readers busy or no checkpointer); later checkpoints overwrite it`,
      );
    }
    return {
      user_id: userId,
      sessions_deleted: result.counts.sessions,
      activities_deleted: result.counts.activities,
      preferences_deleted: result.counts.preferences,
      consent_deleted: result.counts.consents,
      deleted_at: toIso(result.finishedAt),
      receipt_id: receiptId,
      verified: result.verified,
    };
  }
}
