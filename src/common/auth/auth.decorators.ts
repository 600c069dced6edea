import {
  createParamDecorator,
  ExecutionContext,
  InternalServerErrorException,
  SetMetadata,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AuthSession, AuthUser, Role } from './auth-context.js';

export const ROLES_KEY = 'roles';
export const ALLOW_ANONYMOUS_SESSION_KEY = 'allowAnonymousSession';
export const FRESH_AUTH_KEY = 'freshAuth';

/** Only callers with one of these roles (403 otherwise). */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

/** Anonymous sessions (no user yet) may call this route; by default a user is required. */
export const AllowAnonymousSession = () => SetMetadata(ALLOW_ANONYMOUS_SESSION_KEY, true);

/**
 * A sensitive operation: the user must have proved the password within
 * FRESH_AUTH_MAX_AGE_S (login or POST /auth/reauth), else 403 `reauth_required`.
 */
export const RequireFreshAuth = () => SetMetadata(FRESH_AUTH_KEY, true);

function authOf(context: ExecutionContext) {
  const auth = context.switchToHttp().getRequest<FastifyRequest>().auth;
  // Reaching a handler without auth means a @Public() route asked for it: a programming error.
  if (!auth) throw new InternalServerErrorException('No session on a route that requires one');
  return auth;
}

/** The caller's session (guarded routes only). */
export const CurrentSession = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AuthSession => authOf(context).session,
);

/** The signed-in user (routes that do not allow anonymous sessions). */
export const CurrentUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AuthUser => {
    const user = authOf(context).user;
    if (!user) throw new InternalServerErrorException('No user on a route that requires one');
    return user;
  },
);
