import type { FastifyReply } from 'fastify';

/** The cookie name of the seed API. */
export const SESSION_COOKIE = 'session_id';

/**
 * `HttpOnly; SameSite=Lax; Path=/`, `Secure` when COOKIE_SECURE, and
 * `Max-Age` only for remember-me sessions (otherwise a browser-session cookie).
 */
export function setSessionCookie(
  reply: FastifyReply,
  token: string,
  options: { secure: boolean; maxAgeS?: number },
): void {
  void reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: options.secure,
    ...(options.maxAgeS !== undefined ? { maxAge: options.maxAgeS } : {}),
  });
}

export function clearSessionCookie(reply: FastifyReply, secure: boolean): void {
  void reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', path: '/', secure });
}
