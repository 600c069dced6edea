import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { nextTurn } from '../../common/scheduling/event-loop.js';
import { SessionEventsService } from './session-events.service.js';

export const CLEANUP_BATCH_SIZE = 1000;

export interface CleanupResult {
  /** Sessions past their idle or absolute deadline (an `expired` event is recorded for each). */
  expired: number;
  /** Revoked sessions whose rows were removed. */
  revoked: number;
  /** Login failures older than LOGIN_WINDOW_S. */
  loginFailures: number;
}

/**
 * Deletes dead sessions (their data goes with them, ON DELETE CASCADE) and
 * stale login failures, in batches of 1000 so no transaction holds the write
 * lock for long. Only one instance runs it at a time (job lock).
 */
@Injectable()
export class SessionCleanupService {
  private readonly logger = new Logger(SessionCleanupService.name);

  constructor(
    private readonly database: DatabaseService,
    private readonly sessionEvents: SessionEventsService,
    private readonly config: AppConfig,
  ) {}

  /** Returns the counts, or null when another run holds the lock. */
  async run(now = Date.now()): Promise<CleanupResult | null> {
    const result = await this.database.withJobLock('session-cleanup', async () => {
      const totals: CleanupResult = { expired: 0, revoked: 0, loginFailures: 0 };
      for (;;) {
        const batch = await this.deleteSessionBatch(now);
        totals.expired += batch.expired;
        totals.revoked += batch.revoked;
        if (batch.expired + batch.revoked < CLEANUP_BATCH_SIZE) break;
        await nextTurn();
      }
      const failuresBefore = now - this.config.session.loginWindowS * 1000;
      for (;;) {
        const deleted = await this.database.deleteOlderThan(
          'login_failures',
          'failed_at',
          failuresBefore + 1,
          CLEANUP_BATCH_SIZE,
        );
        totals.loginFailures += deleted;
        if (deleted < CLEANUP_BATCH_SIZE) break;
        await nextTurn();
      }
      return totals;
    });
    if (result) {
      this.logger.log(
        { ...result },
        `Session cleanup: ${result.expired} expired, ${result.revoked} revoked, ${result.loginFailures} login failures removed`,
      );
    }
    return result ?? null;
  }

  private deleteSessionBatch(now: number): Promise<{ expired: number; revoked: number }> {
    return this.database.transaction(async (manager) => {
      const rows = await this.database.query<{
        id: string;
        user_id: string | null;
        revoked_at: number | null;
      }>(
        `SELECT id, user_id, revoked_at FROM sessions
         WHERE revoked_at IS NOT NULL OR idle_expires_at <= ? OR absolute_expires_at <= ?
         LIMIT ${CLEANUP_BATCH_SIZE}`,
        [now, now],
        manager,
      );
      if (rows.length === 0) return { expired: 0, revoked: 0 };
      const expired = rows.filter((r) => r.revoked_at === null);
      await this.sessionEvents.record(
        manager,
        expired.map((r) => ({
          sessionId: r.id,
          userId: r.user_id,
          type: 'expired' as const,
          at: now,
        })),
      );
      await this.database.executeIn(
        manager,
        `DELETE FROM sessions WHERE id IN (${rows.map(() => '?').join(', ')})`,
        rows.map((r) => r.id),
      );
      return { expired: expired.length, revoked: rows.length - expired.length };
    });
  }
}
