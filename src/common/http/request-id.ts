import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Fastify's `genReqId`: keeps a caller's `X-Request-Id` when it is a sane
 * token (1-128 of `[A-Za-z0-9._-]`, so it cannot inject into logs or
 * headers), otherwise generates a UUID. Fastify binds it to the request's
 * child logger, so every log line of the request carries it.
 */
export function generateRequestId(raw: IncomingMessage): string {
  const header = raw.headers['x-request-id'];
  const id = typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
  return id;
}
