import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { getRequestIdentity } from '../http/request-context.js';
import { MethodRouter } from '../http/method-router.js';

/** The one JSON error shape of the API (see DESIGN.md, wire conventions). */
export interface ErrorBody {
  status_code: number;
  error: string;
  message: string;
  request_id: string;
  session_id: string | null;
  details?: unknown[];
}

/** The error body for `status`; `error` defaults to the HTTP reason phrase. */
export function errorBody(
  status: number,
  message: string,
  requestId: string,
  sessionId: string | null,
  error?: string,
  details?: unknown[],
): ErrorBody {
  const body: ErrorBody = {
    status_code: status,
    error: error ?? STATUS_CODES[status] ?? 'Error',
    message,
    request_id: requestId,
    session_id: sessionId,
  };
  if (details) body.details = details;
  return body;
}

/**
 * What an HttpException's response object may carry. `error` overrides the
 * reason phrase with a machine-readable code (e.g. `reauth_required`).
 */
interface HttpExceptionPayload {
  message?: string | string[];
  error?: string;
  details?: unknown[];
  /** Response headers that belong to the error, e.g. `retry-after`. */
  headers?: Record<string, string>;
}

interface DescribedError {
  status: number;
  error?: string;
  message: string;
  details?: unknown[];
  headers?: Record<string, string>;
}

/** Errors raised by Fastify itself (body parsing, limits) carry these. */
interface FastifyError {
  statusCode: number;
  code?: string;
  message: string;
}

function isFastifyClientError(exception: unknown): exception is FastifyError {
  const candidate = exception as Partial<FastifyError> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.statusCode === 'number' &&
    candidate.statusCode >= 400 &&
    candidate.statusCode < 500 &&
    typeof candidate.message === 'string'
  );
}

const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'Request body is larger than the allowed limit',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Unsupported Media Type: send application/json',
};

/** better-sqlite3's SQLITE_BUSY ("database is locked"), bare or wrapped by TypeORM. */
function isSqliteBusy(exception: unknown): boolean {
  const code = (error: unknown) => (error as { code?: unknown } | null)?.code;
  const driverError = (exception as { driverError?: unknown } | null)?.driverError;
  return [code(exception), code(driverError)].some(
    (value) => typeof value === 'string' && value.startsWith('SQLITE_BUSY'),
  );
}

/**
 * Turns every error into the JSON error shape: HttpExceptions (validation,
 * auth, rate limit, domain errors), Fastify's own errors (malformed JSON 400,
 * 413, 415), unknown routes (404) and wrong methods (405), and anything
 * unexpected (500 with a generic message; details go to the log only, never
 * to the client).
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  constructor(private readonly methodRouter: MethodRouter) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const described = this.describe(exception, request);

    // A 503 the service chose (queue full, analytics timeout, not ready) is back-pressure,
    // not a fault: its request line (at warn) says enough. Logging each with its stack at
    // error doubled the logging work exactly when the service was overloaded.
    if (described.status >= 500 && !(exception instanceof ServiceUnavailableException)) {
      this.logUnexpected(exception, request);
    }

    const body = errorBody(
      described.status,
      described.message,
      String(request.id),
      getRequestIdentity(request.raw).sessionId,
      described.error,
      described.details,
    );

    if (reply.sent) return;
    for (const [name, value] of Object.entries(described.headers ?? {})) reply.header(name, value);
    void reply
      .status(described.status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(body);
  }

  private describe(exception: unknown, request: FastifyRequest): DescribedError {
    // Nest's Fastify adapter wraps Fastify's own 4xx errors (body parsing, limits) in an
    // HttpException with the original as `cause`: describe the original, so its code picks
    // the message.
    if (exception instanceof HttpException && isFastifyClientError(exception.cause)) {
      return this.describe(exception.cause, request);
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404 && request.routeOptions.url === undefined) {
        return this.describeUnmatchedRoute(request);
      }
      return { status, ...this.payloadOf(exception) };
    }
    if (isFastifyClientError(exception)) {
      const message =
        (exception.code && FASTIFY_MESSAGES[exception.code]) ??
        (exception.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || exception instanceof SyntaxError
          ? `Malformed JSON body: ${exception.message}`
          : exception.message);
      return { status: exception.statusCode, message };
    }
    // SQLite's write lock held past the busy timeout: by another process on the same file
    // (a backup, a migration, the sqlite3 shell), which this service does not expect but
    // cannot rule out. A retry will do; it is the caller's signal, not a crash.
    if (isSqliteBusy(exception)) {
      return {
        status: 503,
        message: 'The database is busy; retry shortly',
        headers: { 'retry-after': '1' },
      };
    }
    return {
      status: 500,
      message: 'An unexpected error occurred; quote the request_id when reporting it',
    };
  }

  private describeUnmatchedRoute(request: FastifyRequest): DescribedError {
    const allowed = this.methodRouter.allowedMethods(request.url);
    // A route of this method matched but found nothing (a wildcard route such as the
    // Swagger UI assets): that is a 404, not a 405 listing the method used.
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      return {
        status: 405,
        message: `Method ${request.method} is not allowed on this path; allowed: ${allowed.join(', ')}`,
        headers: { allow: allowed.join(', ') },
      };
    }
    return { status: 404, message: `No route for ${request.method} ${request.url.split('?')[0]}` };
  }

  private payloadOf(exception: HttpException): Omit<DescribedError, 'status'> {
    const response = exception.getResponse();
    if (typeof response === 'string') return { message: response };
    const payload = response as HttpExceptionPayload;
    const message = Array.isArray(payload.message)
      ? payload.message.join('; ')
      : (payload.message ?? exception.message);
    // Nest puts the reason phrase in `error`; only a code differing from it is kept.
    const error =
      payload.error && payload.error !== STATUS_CODES[exception.getStatus()]
        ? payload.error
        : undefined;
    return { message, error, details: payload.details, headers: payload.headers };
  }

  /**
   * Logs type, message and stack only (driver errors carry query parameters),
   * through the request's logger so the line carries the request id.
   */
  private logUnexpected(exception: unknown, request: FastifyRequest): void {
    if (exception instanceof Error) {
      request.log.error(
        { err: { type: exception.name, message: exception.message, stack: exception.stack } },
        'Unhandled error',
      );
      return;
    }
    request.log.error({ err: { type: typeof exception } }, 'Unhandled non-error exception');
  }
}
