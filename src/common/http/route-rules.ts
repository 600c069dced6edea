import { INestApplicationContext, RequestMethod, Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer, Reflector } from '@nestjs/core';
import { ALLOW_ANONYMOUS_SESSION_KEY, FRESH_AUTH_KEY, ROLES_KEY } from '../auth/auth.decorators.js';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';

/** Methods whose cookie-authenticated requests the session guard checks for CSRF. */
export const UNSAFE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** One controller route and what the session guard asks of its callers. */
export interface RouteRule {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Express-style pattern, e.g. `/api/admin/users/:id/data`. */
  pattern: string;
  isPublic: boolean;
  allowAnonymous: boolean;
  adminOnly: boolean;
  needsFreshAuth: boolean;
}

/**
 * Every controller route of `app`, read from the same decorators the
 * session guard reads (handler over class). The OpenAPI document's error
 * responses and the access tests are derived from it, so a new route is
 * documented and tested by the rules it declares.
 */
export function routeRules(app: INestApplicationContext): RouteRule[] {
  const reflector = app.get(Reflector);
  const rules: RouteRule[] = [];
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Type | null;
      if (!controller) continue;
      const bases = [Reflect.getMetadata(PATH_METADATA, controller) ?? ''].flat() as string[];
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = (controller.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
        if (paths === undefined) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
        const read = (key: string) =>
          reflector.getAllAndOverride<unknown>(key, [handler, controller]);
        for (const base of bases) {
          for (const path of [paths].flat()) {
            rules.push({
              method: method as RouteRule['method'],
              pattern: `/${base}/${path}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1'),
              isPublic: read(IS_PUBLIC_KEY) === true,
              allowAnonymous: read(ALLOW_ANONYMOUS_SESSION_KEY) === true,
              adminOnly: (read(ROLES_KEY) as string[] | undefined)?.includes('admin') === true,
              needsFreshAuth: read(FRESH_AUTH_KEY) === true,
            });
          }
        }
      }
    }
  }
  return rules.sort((a, b) => routeKey(a).localeCompare(routeKey(b)));
}

/** `METHOD /pattern`, e.g. `DELETE /api/admin/users/:id/data`. */
export const routeKey = (route: Pick<RouteRule, 'method' | 'pattern'>) =>
  `${route.method} ${route.pattern}`;
