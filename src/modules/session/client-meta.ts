import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import type { ClientMeta } from './session.service.js';

const USER_AGENT_MAX = 512;

/**
 * The request's address when it is an IP address, else null. Behind
 * TRUST_PROXY it comes from `X-Forwarded-For`, which a client can fill with
 * anything when it reaches the service without the configured proxies. An
 * IPv6 zone (`fe80::1%eth0`) is dropped: it only names an interface here.
 */
function clientIp(request: FastifyRequest): string | null {
  const address = request.ip ?? '';
  const zone = address.indexOf('%');
  const ip = zone === -1 ? address : address.slice(0, zone);
  return isIP(ip) === 0 ? null : ip;
}

/** IP (proxy-aware when TRUST_PROXY) and User-Agent of a request, as sessions store them. */
export function clientMeta(request: FastifyRequest): ClientMeta {
  const userAgent = request.headers['user-agent'];
  return {
    ip: clientIp(request),
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, USER_AGENT_MAX) : null,
  };
}
