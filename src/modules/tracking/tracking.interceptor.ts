import {
  CallHandler,
  ExecutionContext,
  Injectable,
  NestInterceptor,
  OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { AppConfig } from '../../common/config/config.js';
import { SKIP_TRACKING_KEY } from '../../common/decorators/skip-tracking.decorator.js';
import { clientMeta } from '../session/client-meta.js';
import { TrackingService } from './tracking.service.js';

const NAME_MAX = 128;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by TrackingInterceptor: record this request once its response is sent. */
    trackResponse: boolean;
  }
}

/**
 * Records one `api_request` event per handled request of a known session:
 * route pattern (never the raw URL), method, final status (errors included)
 * and duration. The interceptor only marks the request; one app-wide Fastify
 * `onResponse` hook records it after the response went out, so it sees the
 * status the client got and never delays the response. The event is queued,
 * not awaited. Requests without a session cost one property check.
 *
 * Why a hook and not a listener per request: `reply.raw.once('finish', ...)`
 * on every tracked request cut the guarded route's throughput by about a
 * third under load (measured A/B, 50 connections: ~6,900 vs ~10,400 req/s
 * for a no-op listener added with `once` vs `on`), and Fastify already runs
 * its own finish listener that calls the onResponse hooks.
 */
@Injectable()
export class TrackingInterceptor implements NestInterceptor, OnModuleInit {
  private readonly enabled: boolean;

  constructor(
    private readonly tracking: TrackingService,
    private readonly reflector: Reflector,
    private readonly adapterHost: HttpAdapterHost,
    config: AppConfig,
  ) {
    this.enabled = config.tracking.enabled;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    // Declared up front, so every request object keeps one shape.
    fastify.decorateRequest('trackResponse', false);
    fastify.addHook('onResponse', (request, reply, done) => {
      if (request.trackResponse) this.record(request, reply);
      done();
    });
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (!this.enabled) return next.handle();
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (!request.auth) return next.handle();
    if (
      !this.reflector.getAllAndOverride<boolean>(SKIP_TRACKING_KEY, [
        context.getHandler(),
        context.getClass(),
      ])
    ) {
      request.trackResponse = true;
    }
    return next.handle();
  }

  private record(request: FastifyRequest, reply: FastifyReply): void {
    const auth = request.auth!;
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
  }
}
