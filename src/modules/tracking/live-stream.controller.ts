import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { filter } from 'rxjs';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { recordAdminRead } from '../../common/audit.js';
import { Roles } from '../../common/auth/auth.decorators.js';
import { AppConfig } from '../../common/config/config.js';
import { SkipTracking } from '../../common/decorators/skip-tracking.decorator.js';
import { toIso } from '../../common/time.js';
import { extractToken } from '../session/session.guard.js';
import { SessionService } from '../session/session.service.js';
import { StreamQueryDto } from './dto/tracking.dto.js';
import { LiveEventStream } from './live-stream.service.js';

/**
 * How often an open stream checks that its session still may watch. The
 * guard ran once, at connect: without this a stream outlived its admin's
 * logout, revocation, demotion or disabling.
 */
const RECHECK_MS = 1000;

/** The admin live view of activity as it is stored. */
@ApiTags('tracking')
@Roles('admin')
@SkipTracking()
@Controller('api/track')
export class LiveStreamController {
  constructor(
    private readonly live: LiveEventStream,
    private readonly config: AppConfig,
    private readonly sessions: SessionService,
    private readonly emitter: EventEmitter2,
  ) {}

  /**
   * Server-Sent Events: every stored event (of `user_id`, if given) within a
   * second of its commit; a heartbeat comment every TRACKING_STREAM_HEARTBEAT_S.
   * The stream ends (with an `end` event) within a second of its session
   * ending: logout, revocation, expiry, or the user disabled or no longer an
   * admin. Watching is not activity: it does not keep the session from
   * idling out.
   */
  @Get('stream')
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description:
      'Server-Sent Events: `data:` lines each holding one stored event as JSON, heartbeat comments, and `event: end` when the session ends',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  stream(
    @Query() query: StreamQueryDto,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): void {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
    });
    // Fastify answers HEAD with this GET handler. Node sends no headers for a HEAD
    // response until it ends, and this one would end only with the session: answer the
    // headers now, with no stream behind them.
    if (request.method === 'HEAD') {
      raw.end();
      return;
    }
    raw.write(': connected\n\n');
    let sent = 0;
    const subscription = this.live.events
      .pipe(filter((event) => !query.user_id || event.userId === query.user_id))
      .subscribe({
        next: (event) => {
          const data = {
            id: event.id,
            event_id: event.eventId,
            type: event.type,
            name: event.name,
            page: event.path,
            user_id: event.userId,
            session_id: event.sessionId,
            occurred_at: toIso(event.occurredAt),
          };
          raw.write(`id: ${event.id}\nevent: activity\ndata: ${JSON.stringify(data)}\n\n`);
          sent += 1;
        },
        complete: () => raw.end(),
      });
    const heartbeat = setInterval(
      () => raw.write(': heartbeat\n\n'),
      this.config.tracking.streamHeartbeatS * 1000,
    );
    // The guard let this request in with this token, so it is there.
    const token = extractToken(request)!.token;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      clearInterval(recheck);
      subscription.unsubscribe();
      // Audited when it ends, with what it showed: whose events (all, without user_id).
      recordAdminRead(this.emitter, request, 'admin_stream_read', query.user_id ?? null, sent);
    };
    const recheck = setInterval(() => {
      void this.sessions.authenticate(token, Date.now(), false).then(
        (auth) => {
          if (ended || auth?.user?.role === 'admin') return;
          raw.write(`event: end\ndata: ${JSON.stringify({ reason: 'session_ended' })}\n\n`);
          end();
          raw.end();
        },
        () => undefined, // a failed check (database busy) is retried next time
      );
    }, RECHECK_MS);
    request.raw.once('close', end);
  }
}
