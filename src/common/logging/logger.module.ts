import { Module, RequestMethod } from '@nestjs/common';
import { LoggerModule as PinoLoggerModule } from 'nestjs-pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppConfig } from '../config/config.js';
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

function withIdentity(req: IncomingMessage, _res: ServerResponse, line: object): object {
  const identity = getRequestIdentity(req);
  return {
    ...line,
    route: req.routePattern ?? null,
    session_id: identity.sessionId,
    user_id: identity.userId,
  };
}

/**
 * Structured JSON logs (pino). One line per request with method, route
 * pattern, status, duration, request id, public session id and user id.
 * The URL is logged without its query string.
 */
@Module({
  imports: [
    PinoLoggerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
        pinoHttp: {
          level: config.log.level,
          redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
          // Fastify generated the id (see request-id.ts) and stored it on the raw request.
          genReqId: (req: IncomingMessage) => req.id,
          customAttributeKeys: { reqId: 'request_id', responseTime: 'duration_ms' },
          // Every line logged while handling a request carries its request id.
          quietReqLogger: true,
          // Identity is known only once the guard ran, so it is added to the completion line.
          customSuccessObject: withIdentity,
          customErrorObject: withIdentity,
          serializers: {
            req: (req: { method: string; url: string }) => ({
              method: req.method,
              path: req.url.split('?')[0],
            }),
            res: (res: { statusCode: number }) => ({ status: res.statusCode }),
          },
          customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) =>
            err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
        },
      }),
    }),
  ],
})
export class LoggerModule {}
