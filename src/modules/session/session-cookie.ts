import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyReply } from 'fastify';

/** The cookie name of the seed API. */
export const SESSION_COOKIE = 'session_id';

/**
 * The session token from a `Cookie` header. Parsed here, only when a request
 * carries no bearer or header token, instead of by a plugin on every request.
 */
export function readSessionCookie(header: string | undefined): string | undefined {
  if (!header || !header.includes(SESSION_COOKIE)) return undefined;
  return parseCookie(header)[SESSION_COOKIE];
}

/**
 * `HttpOnly; SameSite=Lax; Path=/`, `Secure` when COOKIE_SECURE, and
 * `Max-Age` only for remember-me sessions (otherwise a browser-session cookie).
 */
export function setSessionCookie(
  reply: FastifyReply,
  token: string,
  options: { secure: boolean; maxAgeS?: number },
): void {
  void reply.header(
    'set-cookie',
    stringifySetCookie({
      name: SESSION_COOKIE,
      value: token,
      httpOnly: true,
      sameSite: 'lax',
      path: '/',
      secure: options.secure,
      ...(options.maxAgeS !== undefined ? { maxAge: options.maxAgeS } : {}),
    }),
  );
}

export function clearSessionCookie(reply: FastifyReply, secure: boolean): void {
  void reply.header(
    'set-cookie',
    stringifySetCookie({
      name: SESSION_COOKIE,
      value: '',
      httpOnly: true,
      sameSite: 'lax',
      path: '/',
      secure,
      expires: new Date(0),
    }),
  );
}
