import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { AppConfig } from '../../common/config/config.js';
import { SKIP_TRACKING_KEY } from '../../common/decorators/skip-tracking.decorator.js';
import { clientMeta } from '../session/client-meta.js';
import { TrackingService } from './tracking.service.js';

const NAME_MAX = 128;

/**
 * Records one `api_request` event per handled request of a known session:
 * route pattern (never the raw URL), method, final status (errors included)
 * and duration. It listens for the response's `finish`, so it sees the status
 * the client got and never delays the response; the event is queued, not
 * awaited. Requests without a session cost one property check.
 */
@Injectable()
export class TrackingInterceptor implements NestInterceptor {
  private readonly enabled: boolean;

  constructor(
    private readonly tracking: TrackingService,
    private readonly reflector: Reflector,
    config: AppConfig,
  ) {
    this.enabled = config.tracking.enabled;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (!this.enabled) return next.handle();
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const auth = request.auth;
    if (!auth) return next.handle();
    if (
      this.reflector.getAllAndOverride<boolean>(SKIP_TRACKING_KEY, [
        context.getHandler(),
        context.getClass(),
      ])
    ) {
      return next.handle();
    }
    const reply = http.getResponse<FastifyReply>();
    reply.raw.once('finish', () => {
      const route = request.routeOptions.url ?? 'unknown';
      const { ip, userAgent } = clientMeta(request);
      this.tracking.record(
        { userId: auth.user?.id ?? null, sessionId: auth.session.id, ip, userAgent },
        {
          type: 'api_request',
          name: `${request.method} ${route}`.slice(0, NAME_MAX),
          properties: {
            method: request.method,
            route,
            status: reply.statusCode,
            duration_ms: Math.round(reply.elapsedTime * 100) / 100,
          },
        },
      );
    });
    return next.handle();
  }
}
