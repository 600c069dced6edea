import { Controller, Delete, Get, NotFoundException, Param, Query, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthSession, AuthUser } from '../../common/auth/auth-context.js';
import {
  CurrentSession,
  CurrentUser,
  RequireFreshAuth,
} from '../../common/auth/auth.decorators.js';
import { AppConfig } from '../../common/config/config.js';
import { clientMeta } from './client-meta.js';
import { RevokedCountDto, RevokeScopeQueryDto, SessionListDto } from './dto/session.dto.js';
import { clearSessionCookie } from './session-cookie.js';
import { SessionService } from './session.service.js';

/** The caller's devices: every live session of their account. */
@ApiTags('session')
@Controller('api/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionService,
    private readonly config: AppConfig,
  ) {}

  /** Live sessions, most recently active first; `current` marks this one. */
  @Get()
  async list(
    @CurrentUser() user: AuthUser,
    @CurrentSession() current: AuthSession,
  ): Promise<SessionListDto> {
    const live = await this.sessions.listLive(user.id);
    return {
      items: live.map((s) => ({ ...this.sessions.toDto(s), current: s.id === current.id })),
    };
  }

  /** Revokes one of the caller's sessions (404 for any id that is not theirs). */
  @Delete(':id')
  @ApiOkResponse({ type: RevokedCountDto })
  @ApiResponse({ status: 404, description: 'No live session of yours has this id' })
  async revokeOne(
    @Param('id') sentId: string,
    @CurrentUser() user: AuthUser,
    @CurrentSession() current: AuthSession,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<RevokedCountDto> {
    // Any text is looked for (and not found: 404), as the seed did; a UUID in upper case
    // is the same id (see common/validation/uuid.ts).
    const id = sentId.toLowerCase();
    const live = await this.sessions.listLive(user.id);
    if (!live.some((s) => s.id === id)) throw new NotFoundException('No such session');
    const revoked = await this.sessions.revoke([id], 'user', clientMeta(request).ip);
    // Revoked meanwhile by a parallel request (another instance): it is no longer live.
    if (revoked === 0) throw new NotFoundException('No such session');
    if (id === current.id) clearSessionCookie(reply, this.config.session.cookieSecure);
    return { revoked };
  }

  /** Revokes every other session (`scope=others`) or all of them (`scope=all`). Needs fresh auth. */
  @Delete()
  @RequireFreshAuth()
  @ApiOkResponse({ type: RevokedCountDto })
  async revokeMany(
    @Query() query: RevokeScopeQueryDto,
    @CurrentUser() user: AuthUser,
    @CurrentSession() current: AuthSession,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<RevokedCountDto> {
    const revoked = await this.sessions.revokeAllForUser(user.id, 'user', clientMeta(request).ip, {
      exceptSessionId: query.scope === 'others' ? current.id : undefined,
    });
    if (query.scope === 'all') clearSessionCookie(reply, this.config.session.cookieSecure);
    return { revoked };
  }
}
