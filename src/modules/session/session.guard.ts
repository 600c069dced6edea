import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { Role, TokenTransport } from '../../common/auth/auth-context.js';
import {
  ALLOW_ANONYMOUS_SESSION_KEY,
  FRESH_AUTH_KEY,
  ROLES_KEY,
} from '../../common/auth/auth.decorators.js';
import { AppConfig } from '../../common/config/config.js';
import { IS_PUBLIC_KEY } from '../../common/decorators/public.decorator.js';
import { SKIP_TRACKING_KEY } from '../../common/decorators/skip-tracking.decorator.js';
import { setRequestIdentity } from '../../common/http/request-context.js';
import { UNSAFE_METHODS } from '../../common/http/route-rules.js';
import { readSessionCookie } from './session-cookie.js';
import { SessionService, UNAUTHORIZED_MESSAGE } from './session.service.js';

export const ANONYMOUS_SESSION_MESSAGE =
  'Authentication required: this route needs a signed-in user, not an anonymous session';

/** What a route asks of the guard, from its decorators (handler over class). */
interface RouteRules {
  isPublic: boolean;
  allowAnonymous: boolean;
  roles: Role[] | undefined;
  needsFreshAuth: boolean;
  /** Automatic tracking records the route's requests (no `@SkipTracking()`). */
  tracked: boolean;
}

/**
 * The token, from (in this order) `Authorization: Bearer`, `X-Session-ID`
 * (seed compatibility) or the `session_id` cookie. Never from the query string.
 */
export function extractToken(
  request: FastifyRequest,
): { token: string; transport: TokenTransport } | null {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return { token: match[1], transport: 'bearer' };
  }
  const header = request.headers['x-session-id'];
  if (typeof header === 'string' && header.length > 0)
    return { token: header, transport: 'header' };
  const cookie = readSessionCookie(request.headers.cookie);
  if (cookie) return { token: cookie, transport: 'cookie' };
  return null;
}

/**
 * Global guard: every route needs a valid user session unless marked
 * `@Public()` (no session needed) or `@AllowAnonymousSession()`. Missing,
 * unknown, expired, revoked and disabled-user sessions all get the same 401.
 * Also enforces `@Roles`, `@RequireFreshAuth` and CSRF for cookie sessions,
 * and marks the requests it let through with a session for automatic
 * tracking (`request.trackResponse`, read by RequestTracker after the
 * response). The guard marks because it already reads every route's
 * decorators: a Nest interceptor doing it instead put every request through
 * rxjs and async-context binding, about a third of the guarded route's
 * throughput.
 */
@Injectable()
export class SessionGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: SessionService,
    private readonly config: AppConfig,
  ) {}

  /** By controller class, then handler (an inherited handler may serve several classes). */
  private readonly rules = new WeakMap<object, WeakMap<object, RouteRules>>();

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const { isPublic, allowAnonymous, roles, needsFreshAuth, tracked } = this.rulesOf(context);

    const credential = extractToken(request);
    const auth = credential ? await this.sessions.authenticate(credential.token) : null;
    if (!credential || !auth) {
      // On public routes a stale or bogus token is simply no session.
      if (isPublic) return true;
      throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
    }

    // Known before the CSRF check, so that its refusal names the session like any error.
    setRequestIdentity(request, { sessionId: auth.session.id, userId: auth.user?.id ?? null });
    if (credential.transport === 'cookie' && UNSAFE_METHODS.has(request.method)) {
      this.assertSameOrigin(request);
    }
    request.auth = { ...auth, transport: credential.transport };
    if (isPublic) {
      request.trackResponse = tracked;
      return true;
    }

    // 401 as for no session (the client must sign in), but saying why: the error body
    // carries the anonymous session's id, so "no valid session" would read as a contradiction.
    if (!auth.user && !allowAnonymous) throw new UnauthorizedException(ANONYMOUS_SESSION_MESSAGE);

    if (roles && (!auth.user || !roles.includes(auth.user.role))) {
      throw new ForbiddenException('This operation needs the admin role');
    }

    if (needsFreshAuth) {
      const maxAgeMs = this.config.session.freshAuthMaxAgeS * 1000;
      const authTime = auth.session.authTime;
      if (authTime === null || Date.now() - authTime > maxAgeMs) {
        throw new ForbiddenException({
          error: 'reauth_required',
          message: `Confirm your password first (POST /auth/reauth); it must be less than ${this.config.session.freshAuthMaxAgeS} s old`,
        });
      }
    }
    request.trackResponse = tracked;
    return true;
  }

  /**
   * The route's rules, read from its metadata once per handler: decorators
   * cannot change at run time, and five reflector lookups per request cost
   * more than the cached session check itself.
   */
  private rulesOf(context: ExecutionContext): RouteRules {
    const handler = context.getHandler();
    const controller = context.getClass();
    let ofClass = this.rules.get(controller);
    if (!ofClass) {
      ofClass = new WeakMap();
      this.rules.set(controller, ofClass);
    }
    let rules = ofClass.get(handler);
    if (!rules) {
      const targets = [handler, controller];
      const read = <T>(key: string) => this.reflector.getAllAndOverride<T>(key, targets);
      rules = {
        isPublic: read<boolean>(IS_PUBLIC_KEY) ?? false,
        allowAnonymous: read<boolean>(ALLOW_ANONYMOUS_SESSION_KEY) ?? false,
        roles: read<Role[] | undefined>(ROLES_KEY),
        needsFreshAuth: read<boolean>(FRESH_AUTH_KEY) ?? false,
        tracked: !read<boolean>(SKIP_TRACKING_KEY),
      };
      ofClass.set(handler, rules);
    }
    return rules;
  }

  /**
   * CSRF defence for cookie sessions: browsers send `Origin` on cross-site
   * unsafe requests and `Sec-Fetch-Site: cross-site`; either from a foreign
   * origin is refused. Bearer and header tokens are not sent by browsers on
   * their own, so they need no check.
   */
  private assertSameOrigin(request: FastifyRequest): void {
    const fetchSite = request.headers['sec-fetch-site'];
    if (fetchSite === 'cross-site') {
      throw new ForbiddenException({
        error: 'csrf_rejected',
        message: 'Cross-site request refused',
      });
    }
    const origin = request.headers.origin;
    if (origin === undefined) return;
    if (this.isOwnOrigin(origin, request) || this.config.http.corsOrigins.includes(origin)) return;
    throw new ForbiddenException({
      error: 'csrf_rejected',
      message: `Cross-site request from origin ${origin} refused`,
    });
  }

  /**
   * `origin` is this service's: the same host and port, over http or https.
   * The scheme is not compared: behind a proxy that ends TLS the service
   * sees http while the browser says `https://`, and secure cookies are only
   * sent over https anyway.
   */
  private isOwnOrigin(origin: string, request: FastifyRequest): boolean {
    try {
      const url = new URL(origin);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.host === request.host;
    } catch {
      return false;
    }
  }
}
