import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';

/**
 * Who a request belongs to, as far as logs and error bodies may say: the
 * public session id (never the secret token) and the user id. Kept on the raw
 * Node request because the request logger (pino-http) and the exception filter
 * only see that object, while guards see the Fastify wrapper.
 */
export interface RequestIdentity {
  sessionId: string | null;
  userId: string | null;
}

declare module 'node:http' {
  interface IncomingMessage {
    /** The matched route pattern (`/api/sessions/:id`), never the raw URL. */
    routePattern?: string;
    identity?: RequestIdentity;
  }
}

export function setRequestIdentity(request: FastifyRequest, identity: RequestIdentity): void {
  request.raw.identity = identity;
}

export function getRequestIdentity(raw: IncomingMessage): RequestIdentity {
  return raw.identity ?? { sessionId: null, userId: null };
}
