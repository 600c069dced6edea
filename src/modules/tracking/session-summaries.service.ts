import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { DatabaseService } from '../../common/database/database.service.js';
import { rebuildSessions } from './session-summaries.js';

/** Maintenance of the rollup by the code paths that change events after they were written. */
@Injectable()
export class SessionSummaries {
  constructor(private readonly database: DatabaseService) {}

  /** Recomputes from the events table the summaries of `sessionIds`. */
  async rebuild(sessionIds: string[], manager?: EntityManager): Promise<void> {
    if (!manager) {
      await this.database.transaction((m) => this.rebuild(sessionIds, m));
      return;
    }
    await rebuildSessions(this.database, manager, sessionIds);
  }

  /** Identity stitching: the session's summary belongs to the user from now on. */
  attribute(sessionId: string, userId: string, manager: EntityManager): Promise<number> {
    return this.database.executeIn(
      manager,
      'UPDATE session_summaries SET user_id = ? WHERE session_id = ? AND user_id IS NULL',
      [userId, sessionId],
    );
  }

  /** Erasure: the summaries of the user's sessions go with their events. */
  async forget(userId: string, sessionIds: string[], manager: EntityManager): Promise<void> {
    await this.database.executeIn(manager, 'DELETE FROM session_summaries WHERE user_id = ?', [
      userId,
    ]);
    await this.database.executeInChunks(
      manager,
      sessionIds,
      (list) => `DELETE FROM session_summaries WHERE session_id IN (${list})`,
    );
  }
}
