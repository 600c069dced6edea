import type { FastifyRequest } from 'fastify';
import type { ClientMeta } from './session.service.js';

const USER_AGENT_MAX = 512;

/** IP (proxy-aware when TRUST_PROXY) and User-Agent of a request, as sessions store them. */
export function clientMeta(request: FastifyRequest): ClientMeta {
  const userAgent = request.headers['user-agent'];
  return {
    ip: request.ip || null,
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, USER_AGENT_MAX) : null,
  };
}
