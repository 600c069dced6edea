import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import {
  SESSION_LOGIN,
  SESSION_LOGOUT,
  SessionLoginEvent,
  SessionLogoutEvent,
} from '../session/session.events.js';
import { TrackingService } from './tracking.service.js';

/**
 * Turns session lifecycle events into activity events (`login`, `logout`),
 * and stitches an anonymous session's events to the user who logged in with
 * it. The session module only emits; it never writes tracking tables.
 */
@Injectable()
export class SessionActivityListener {
  private readonly logger = new Logger(SessionActivityListener.name);

  constructor(private readonly tracking: TrackingService) {}

  @OnEvent(SESSION_LOGIN, { promisify: true })
  async onLogin(event: SessionLoginEvent): Promise<void> {
    try {
      if (event.upgradedFromAnonymous) await this.tracking.stitch(event.sessionId, event.userId);
    } catch (error) {
      this.logger.error(
        `Identity stitching failed for session ${event.sessionId}: ${(error as Error).message}`,
      );
    }
    this.tracking.record(
      {
        userId: event.userId,
        sessionId: event.sessionId,
        ip: event.ip,
        userAgent: event.userAgent,
      },
      { type: 'login' },
    );
  }

  @OnEvent(SESSION_LOGOUT)
  onLogout(event: SessionLogoutEvent): void {
    this.tracking.record(
      {
        userId: event.userId,
        sessionId: event.sessionId,
        ip: event.ip,
        userAgent: event.userAgent,
      },
      { type: 'logout' },
    );
  }
}
