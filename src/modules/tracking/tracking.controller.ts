import { Body, Controller, HttpCode, Post, Req, Res, UnauthorizedException } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '../../common/config/config.js';
import { Public } from '../../common/decorators/public.decorator.js';
import { SkipTracking } from '../../common/decorators/skip-tracking.decorator.js';
import { setRequestIdentity } from '../../common/http/request-context.js';
import { clientMeta } from '../session/client-meta.js';
import { setSessionCookie } from '../session/session-cookie.js';
import { SessionService, UNAUTHORIZED_MESSAGE } from '../session/session.service.js';
import {
  BatchResultDto,
  TrackActionDto,
  TrackBatchDto,
  TrackedDto,
  TrackPageDto,
} from './dto/tracking.dto.js';
import { normalizePagePath, normalizeReferrer, NOT_A_PAGE } from './page-path.js';
import { TrackingActor, TrackingService } from './tracking.service.js';
import { invalidField } from '../../common/validation/invalid-field.js';

/** The tracking routes are public, but without a session they need anonymous sessions. */
const NO_ANONYMOUS_SESSIONS =
  'No session, and anonymous sessions are off (ANONYMOUS_SESSIONS=false)';

/**
 * Explicit tracking. Each answer comes after the event committed. A request
 * without a session starts an anonymous one when ANONYMOUS_SESSIONS (its
 * token is returned as `session_id` and set as the cookie), else 401.
 */
@ApiTags('tracking')
@Public()
@SkipTracking()
@Controller('api/track')
export class TrackingController {
  constructor(
    private readonly tracking: TrackingService,
    private readonly sessions: SessionService,
    private readonly config: AppConfig,
  ) {}

  /** Records a page view. */
  @Post('page')
  @HttpCode(200)
  @ApiOkResponse({ type: TrackedDto })
  @ApiResponse({ status: 503, description: 'The event queue is full; retry after Retry-After' })
  @ApiResponse({ status: 401, description: NO_ANONYMOUS_SESSIONS })
  async page(
    @Body() dto: TrackPageDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TrackedDto> {
    const path = normalizePagePath(dto.page);
    if (!path) throw invalidField('page', NOT_A_PAGE);
    const { actor, token } = await this.actorFor(request, reply, 1);
    const properties: Record<string, unknown> = { ...(dto.properties ?? {}) };
    if (dto.title !== undefined) properties.title = dto.title;
    if (dto.referrer !== undefined) properties.referrer = normalizeReferrer(dto.referrer);
    const eventId = await this.tracking.trackOne(actor, {
      type: 'page_view',
      path,
      properties: Object.keys(properties).length > 0 ? properties : null,
    });
    return this.tracked('Page view', eventId, token);
  }

  /** Records an action under its real name (e.g. `checkout.submit`). */
  @Post('action')
  @HttpCode(200)
  @ApiOkResponse({ type: TrackedDto })
  @ApiResponse({ status: 503, description: 'The event queue is full; retry after Retry-After' })
  @ApiResponse({ status: 401, description: NO_ANONYMOUS_SESSIONS })
  async action(
    @Body() dto: TrackActionDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TrackedDto> {
    const { actor, token } = await this.actorFor(request, reply, 1);
    const properties: Record<string, unknown> = { ...(dto.details ?? {}) };
    if (dto.feature !== undefined) properties.feature = dto.feature;
    const eventId = await this.tracking.trackOne(actor, {
      type: 'action',
      name: dto.action,
      properties: Object.keys(properties).length > 0 ? properties : null,
    });
    return this.tracked('Action', eventId, token);
  }

  /**
   * Records a client batch of 1-1000 events. Each bad event is rejected on
   * its own (`rejected`: index and reason); a resent `event_id` counts as a
   * duplicate, not a second row.
   */
  @Post('events')
  @HttpCode(200)
  @ApiOkResponse({ type: BatchResultDto })
  @ApiResponse({ status: 503, description: 'The event queue is full; retry after Retry-After' })
  @ApiResponse({ status: 401, description: NO_ANONYMOUS_SESSIONS })
  @ApiResponse({ status: 413, description: 'More events than TRACKING_QUEUE_MAX can ever hold' })
  async events(
    @Body() dto: TrackBatchDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<BatchResultDto> {
    const { actor, token } = await this.actorFor(request, reply, dto.events.length);
    const result = await this.tracking.trackBatch(actor, dto.events);
    return token ? { ...result, session_id: token } : result;
  }

  private tracked(what: string, eventId: string | null, token?: string): TrackedDto {
    const body: TrackedDto = {
      status: 'success',
      message: eventId ? `${what} tracked` : `${what} not stored: analytics are off for this user`,
      event_id: eventId,
      stored: eventId !== null,
    };
    return token ? { ...body, session_id: token } : body;
  }

  /**
   * The caller as an actor, starting an anonymous session if needed and
   * allowed: only once the `events` could be queued, so that a request
   * refused with 413 or 503 leaves no session behind.
   */
  private async actorFor(
    request: FastifyRequest,
    reply: FastifyReply,
    events: number,
  ): Promise<{ actor: TrackingActor; token?: string }> {
    const meta = clientMeta(request);
    if (request.auth) {
      return {
        actor: {
          userId: request.auth.user?.id ?? null,
          sessionId: request.auth.session.id,
          ...meta,
        },
      };
    }
    if (!this.config.session.anonymousSessions) {
      throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
    }
    this.tracking.assertRoomFor(events);
    const issued = await this.sessions.createAnonymous(meta);
    setSessionCookie(reply, issued.token, { secure: this.config.session.cookieSecure });
    setRequestIdentity(request, { sessionId: issued.session.id, userId: null });
    return { actor: { userId: null, sessionId: issued.session.id, ...meta }, token: issued.token };
  }
}
