import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';

/**
 * Who a request belongs to, as far as logs and error bodies may say: the
 * public session id (never the secret token) and the user id, for the request
 * log line and error bodies. Set by the session guard, and by handlers that
 * start a session (login, anonymous sessions).
 */
export interface RequestIdentity {
  sessionId: string | null;
  userId: string | null;
}

declare module 'node:http' {
  interface IncomingMessage {
    identity?: RequestIdentity;
  }
}

export function setRequestIdentity(request: FastifyRequest, identity: RequestIdentity): void {
  request.raw.identity = identity;
}

export function getRequestIdentity(raw: IncomingMessage): RequestIdentity {
  return raw.identity ?? { sessionId: null, userId: null };
}
