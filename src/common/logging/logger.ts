import type { LoggerService } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import pino, { Logger } from 'pino';
import type { AppConfig } from '../config/config.js';
import { getRequestIdentity } from '../http/request-context.js';

/**
 * Paths that must never reach a log line with their values. Tokens travel in
 * the cookie, `Authorization` and `X-Session-ID`; login responses set cookies.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-session-id"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
];

/** The process's one pino logger: JSON lines on stdout. */
export function createLogger(config: AppConfig): Logger {
  return pino({
    level: config.log.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  });
}

/**
 * One line per request, written by Fastify's own request logger (the child
 * logger bound to the request id), after the response: method, path without
 * query string, route pattern, status, duration, request id, public session
 * id and user id. Cheaper than a middleware-based logger on every request.
 */
export function logRequests(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    if (logger.isLevelEnabled(level)) {
      const identity = getRequestIdentity(request.raw);
      request.log[level](
        {
          // Not `req`/`res`: Fastify's logger serialises those keys as raw objects.
          method: request.method,
          path: request.url.split('?')[0],
          status,
          duration_ms: Math.round(reply.elapsedTime * 100) / 100,
          route: request.routeOptions.url ?? null,
          session_id: identity.sessionId,
          user_id: identity.userId,
        },
        'request completed',
      );
    }
    done();
  });
}

/** Nest's logger interface over pino, so framework and module logs share the format. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal', message, rest);
  }

  /** Nest passes `(message, context)` or `(object, message, context)`; the last string is the context. */
  private write(level: pino.Level, message: unknown, rest: unknown[]): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    if (typeof message === 'object' && message !== null) {
      const text = typeof rest[0] === 'string' ? rest[0] : undefined;
      this.logger[level]({ context, ...message }, text);
    } else {
      this.logger[level]({ context }, String(message));
    }
  }
}
