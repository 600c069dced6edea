/**
 * Who is calling, as established by the session guard. Shared by every module
 * (through the decorators beside this file) so none of them needs to know how
 * sessions are stored.
 */
export type Role = 'user' | 'admin';
export const ROLES: readonly Role[] = ['user', 'admin'];

/** How the session token arrived; CSRF checks apply to cookies only. */
export type TokenTransport = 'cookie' | 'bearer' | 'header';

export interface AuthUser {
  id: string;
  username: string;
  role: Role;
}

export interface AuthSession {
  /** Public session id (UUID): safe for logs, URLs, exports. Never the token. */
  id: string;
  userId: string | null;
  createdAt: number;
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  /** When the user last proved knowledge of the password (login or reauth). */
  authTime: number | null;
  rememberMe: boolean;
  ip: string | null;
  userAgent: string | null;
  /**
   * Hash of the token this request presented (never the token): a rotation
   * replaces exactly that token, so of two parallel rotations one fails
   * instead of both answering with tokens of which one is already dead.
   */
  tokenHash: string;
}

export interface AuthContext {
  session: AuthSession;
  /** Null for an anonymous session. */
  user: AuthUser | null;
  transport: TokenTransport;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: AuthContext;
    /**
     * Set by the session guard when a request with a session passed it on a
     * route without `@SkipTracking()`: automatic tracking records it once the
     * response is sent (RequestTracker).
     */
    trackResponse: boolean;
  }
}
