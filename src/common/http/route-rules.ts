import { INestApplicationContext, RequestMethod, Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import { ModulesContainer, Reflector } from '@nestjs/core';
import { THROTTLER_SKIP } from '@nestjs/throttler/dist/throttler.constants.js';
import type { FastifyInstance, preValidationHookHandler } from 'fastify';
import { ALLOW_ANONYMOUS_SESSION_KEY, FRESH_AUTH_KEY, ROLES_KEY } from '../auth/auth.decorators.js';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';
import { errorBody } from '../filters/all-exceptions.filter.js';

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
  /** Whether the handler reads a request body (`@Body()`). */
  takesBody: boolean;
  /** Whether the general rate limit (RATE_LIMIT_MAX) counts it (no `@SkipThrottle()`). */
  rateLimited: boolean;
}

/**
 * Every controller route of `app`, read from the same decorators the
 * session guard reads (handler over class). The OpenAPI document's error
 * responses, the refusal of unexpected bodies and the access tests are
 * derived from it, so a new route is documented, checked and tested by the
 * rules it declares.
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
        // Nest keys each decorated parameter `<paramtype>:<index>`.
        const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, name) ?? {}) as object;
        const takesBody = Object.keys(args).some((arg) =>
          arg.startsWith(`${RouteParamtypes.BODY}:`),
        );
        for (const base of bases) {
          for (const path of [paths].flat()) {
            rules.push({
              method: method as RouteRule['method'],
              pattern: `/${base}/${path}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1'),
              isPublic: read(IS_PUBLIC_KEY) === true,
              allowAnonymous: read(ALLOW_ANONYMOUS_SESSION_KEY) === true,
              adminOnly: (read(ROLES_KEY) as string[] | undefined)?.includes('admin') === true,
              needsFreshAuth: read(FRESH_AUTH_KEY) === true,
              takesBody,
              // The one (unnamed) throttler is called `default`.
              rateLimited: read(`${THROTTLER_SKIP}default`) !== true,
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

/**
 * Routes that take no body refuse one with fields (400, before the handler
 * or the guard runs) instead of ignoring it: a client that sends
 * `{"confirm": false}` to `DELETE /api/gdpr/delete` expects the field to
 * matter. No body, `null` and `{}` pass: some clients always send one. The
 * check is attached to those routes alone (GET bodies are never parsed),
 * so the hot GET routes run no hook for it. Call before the app's routes
 * are registered (`app.init()`).
 */
export function refuseUnexpectedBodies(
  fastify: FastifyInstance,
  rules: readonly RouteRule[],
): void {
  const bodiless = new Set(
    rules.filter((rule) => !rule.takesBody && rule.method !== 'GET').map(routeKey),
  );
  const refuse: preValidationHookHandler = (request, reply, done) => {
    const body = request.body;
    if (body === undefined || body === null || isEmptyObject(body)) return done();
    const message = `Validation failed: ${request.method} ${request.routeOptions.url} takes no request body`;
    void reply.code(400).send(errorBody(400, message, request.id, null));
  };
  fastify.addHook('onRoute', (route) => {
    if (typeof route.method !== 'string' || !bodiless.has(`${route.method} ${route.url}`)) return;
    route.preValidation = [...[route.preValidation ?? []].flat(), refuse];
  });
}

const isEmptyObject = (value: unknown) =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.keys(value).length === 0;
