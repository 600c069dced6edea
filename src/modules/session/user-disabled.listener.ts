import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { USER_DISABLED, UserDisabledEvent } from '../users/users.events.js';
import { SessionService } from './session.service.js';

/** A disabled user loses every session at once (the guard also refuses them meanwhile). */
@Injectable()
export class UserDisabledListener {
  constructor(private readonly sessions: SessionService) {}

  @OnEvent(USER_DISABLED, { promisify: true, suppressErrors: false })
  async onUserDisabled(event: UserDisabledEvent): Promise<void> {
    await this.sessions.revokeAllForUser(event.userId, 'disabled', null);
  }
}
