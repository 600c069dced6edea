import { Controller, Delete, Get, Param, Query, Req } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AUDIT_EVENT, auditContext, recordAdminRead } from '../../common/audit.js';
import type { FastifyRequest } from 'fastify';
import { Roles } from '../../common/auth/auth.decorators.js';
import { ApiNoSuchUser, ExistingUserPipe } from '../users/existing-user.pipe.js';
import {
  ListSessionEventsQueryDto,
  RevokedCountDto,
  SessionEventPageDto,
  SessionListDto,
} from './dto/session.dto.js';
import { SessionEventsService } from './session-events.service.js';
import { SessionService } from './session.service.js';
import { parseUuid } from '../../common/validation/uuid.js';

@ApiTags('admin')
@Roles('admin')
@Controller('api/admin')
export class AdminSessionsController {
  constructor(
    private readonly sessions: SessionService,
    private readonly sessionEvents: SessionEventsService,
    private readonly emitter: EventEmitter2,
  ) {}

  /** A user's live sessions. */
  @Get('users/:id/sessions')
  @ApiOkResponse({ type: SessionListDto })
  @ApiNoSuchUser()
  async list(
    @Param('id', parseUuid('id'), ExistingUserPipe) userId: string,
    @Req() request: FastifyRequest,
  ): Promise<SessionListDto> {
    const live = await this.sessions.listLive(userId);
    recordAdminRead(this.emitter, request, 'admin_sessions_read', userId, live.length);
    return { items: live.map((s) => ({ ...this.sessions.toDto(s), current: false })) };
  }

  /** Revokes every session of a user. */
  @Delete('users/:id/sessions')
  @ApiOkResponse({ type: RevokedCountDto })
  @ApiNoSuchUser()
  async revokeAll(
    @Param('id', parseUuid('id'), ExistingUserPipe) userId: string,
    @Req() request: FastifyRequest,
  ): Promise<RevokedCountDto> {
    // No address in the user's session log: the admin's is not the user's data, and it would
    // reach the user's export (Art. 15(4)). The audit log keeps which admin did it, from which
    // session.
    const revoked = await this.sessions.revokeAllForUser(userId, 'admin', null);
    this.emitter.emit(AUDIT_EVENT, {
      ...auditContext(request),
      action: 'admin_sessions_revoke',
      targetUserId: userId,
      details: { revoked },
    });
    return { revoked };
  }

  /** The session security log, newest first. */
  @Get('session-events')
  async events(
    @Query() query: ListSessionEventsQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<SessionEventPageDto> {
    const page = await this.sessionEvents.list({
      userId: query.user_id,
      limit: query.limit,
      cursor: query.cursor,
    });
    recordAdminRead(
      this.emitter,
      request,
      'admin_session_events_read',
      query.user_id ?? null,
      page.items.length,
    );
    return page;
  }
}
