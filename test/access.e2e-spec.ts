import { RequestMethod, Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer, Reflector } from '@nestjs/core';
import {
  ALLOW_ANONYMOUS_SESSION_KEY,
  FRESH_AUTH_KEY,
  ROLES_KEY,
} from '../src/common/auth/auth.decorators';
import { IS_PUBLIC_KEY } from '../src/common/decorators/public.decorator';
import { ADMIN_ENV, LoggedIn, loginAdmin, registerAndLogin } from './support/auth';
import { databaseSnapshot } from './support/snapshot';
import { startTestApp, TestApp } from './support/test-app';

/** One route as the session guard sees it, read from the controllers' decorators. */
interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Express-style pattern, e.g. `/api/admin/users/:id/data`. */
  pattern: string;
  isPublic: boolean;
  allowAnonymous: boolean;
  adminOnly: boolean;
  needsFreshAuth: boolean;
}

/**
 * Every controller route of the running app. Read from the same metadata
 * the guard reads, so a route added later is covered by the tests below
 * without being listed here.
 */
function routesOf(t: TestApp): Route[] {
  const reflector = t.app.get(Reflector);
  const routes: Route[] = [];
  for (const module of t.app.get(ModulesContainer).values()) {
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
        const read = (key: string) => reflector.getAllAndOverride(key, [handler, controller]);
        for (const base of bases) {
          for (const path of [paths].flat()) {
            routes.push({
              method: method as Route['method'],
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
  return routes.sort((a, b) => key(a).localeCompare(key(b)));
}

const key = (route: Pick<Route, 'method' | 'pattern'>) => `${route.method} ${route.pattern}`;

/**
 * Access rules, route by route: who may call what, and that a refused
 * request changes nothing. The guard refuses before pipes run, so path
 * parameters get a well-formed value (a 400 would hide a missing check)
 * and bodies are empty.
 */
describe('access rules of every route', () => {
  let t: TestApp;
  let routes: Route[];
  let user: LoggedIn;
  let admin: LoggedIn;
  let anonymousToken: string;

  beforeAll(async () => {
    t = await startTestApp(ADMIN_ENV);
    routes = routesOf(t);
    user = await registerAndLogin(t, 'access-user');
    admin = await loginAdmin(t);
    const anonymous = await t.http().post('/api/session').expect(201);
    anonymousToken = anonymous.body.session_id;
  });
  afterAll(async () => {
    await t.close();
  });

  /** The route's URL with a well-formed value for each parameter (the user's own id). */
  const urlOf = (route: Route) =>
    route.pattern.replace(/:[A-Za-z_]+/g, (param) => (param === ':key' ? 'theme' : user.userId));

  /** Sends one request to `route` with `headers`. */
  function call(route: Route, headers: Record<string, string>) {
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
    const req = t.http()[method](urlOf(route));
    for (const [name, value] of Object.entries(headers)) req.set(name, value);
    return ['GET', 'DELETE'].includes(route.method) ? req : req.send({});
  }

  const snapshot = () => databaseSnapshot(t);

  it('finds the routes: every /api/admin and system analytics route is admin-only', () => {
    const keys = routes.map(key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'DELETE /api/admin/users/:id/data',
        'PATCH /api/admin/users/:id',
        'GET /api/analytics/report',
        'POST /api/analytics/funnel',
        'GET /api/gdpr/export',
        'DELETE /api/gdpr/delete',
        'POST /auth/login',
      ]),
    );
    const shouldBeAdmin = routes.filter(
      (r) =>
        r.pattern.startsWith('/api/admin/') ||
        (r.pattern.startsWith('/api/analytics/') &&
          !/^\/api\/analytics\/(user|journey)(\/|$)/.test(r.pattern)),
    );
    expect(shouldBeAdmin.length).toBeGreaterThan(20);
    expect(shouldBeAdmin.filter((r) => !r.adminOnly).map(key)).toEqual([]);
  });

  it('refuses every admin route to a signed-in user (403), changing nothing', async () => {
    const adminRoutes = routes.filter((r) => r.adminOnly);
    const before = await snapshot();
    const answers = [];
    for (const route of adminRoutes) {
      const res = await call(route, { authorization: user.bearer });
      answers.push([key(route), res.status, res.body.message]);
    }
    expect(answers).toEqual(
      adminRoutes.map((r) => [key(r), 403, 'This operation needs the admin role']),
    );
    expect(await snapshot()).toBe(before);
  });

  it('refuses every non-public route without a session, or with an unknown token (401), changing nothing', async () => {
    const guarded = routes.filter((r) => !r.isPublic);
    expect(guarded.length).toBeGreaterThan(40);
    const before = await snapshot();
    const answers = [];
    for (const route of guarded) {
      const attempts: Record<string, string>[] = [
        {},
        { authorization: 'Bearer not-a-session-token' },
      ];
      for (const headers of attempts) {
        const res = await call(route, headers);
        answers.push([key(route), res.status, res.body.message]);
      }
    }
    expect(answers).toEqual(
      guarded.flatMap((r) =>
        Array(2).fill([key(r), 401, 'Authentication required: no valid session']),
      ),
    );
    expect(await snapshot()).toBe(before);
  });

  it('refuses routes that need a user to an anonymous session (401), changing nothing', async () => {
    const forUsers = routes.filter((r) => !r.isPublic && !r.allowAnonymous);
    expect(forUsers.length).toBeGreaterThan(40);
    const before = await snapshot();
    const answers = [];
    for (const route of forUsers) {
      const res = await call(route, { authorization: `Bearer ${anonymousToken}` });
      answers.push([key(route), res.status, res.body.message]);
    }
    expect(answers).toEqual(
      forUsers.map((r) => [key(r), 401, 'Authentication required: no valid session']),
    );
    expect(await snapshot()).toBe(before);
  });

  it('asks for a fresh password on sensitive routes (403 reauth_required), changing nothing', async () => {
    const sensitive = routes.filter((r) => r.needsFreshAuth);
    expect(sensitive.map(key)).toEqual(
      expect.arrayContaining([
        'DELETE /api/admin/users/:id/data',
        'DELETE /api/gdpr/delete',
        'DELETE /api/sessions',
      ]),
    );
    // Both sessions proved the password long ago.
    for (const session of [user, admin]) {
      await t.dataSource.query(
        `UPDATE sessions SET auth_time = ${Date.now() - 86_400_000} WHERE id = '${session.sessionId}'`,
      );
    }
    const before = await snapshot();
    const answers = [];
    for (const route of sensitive) {
      const caller = route.adminOnly ? admin : user;
      const res = await call(route, { authorization: caller.bearer });
      answers.push([key(route), res.status, res.body.error]);
    }
    expect(answers).toEqual(sensitive.map((r) => [key(r), 403, 'reauth_required']));
    expect(await snapshot()).toBe(before);
  });

  it('refuses unsafe requests with a session cookie from a foreign origin (403 csrf_rejected), changing nothing', async () => {
    const unsafe = routes.filter((r) => r.method !== 'GET');
    expect(unsafe.length).toBeGreaterThan(20);
    const before = await snapshot();
    const answers = [];
    for (const route of unsafe) {
      const caller = route.adminOnly ? admin : user;
      const foreignOrigins: Record<string, string>[] = [
        { origin: 'https://evil.example' },
        { 'sec-fetch-site': 'cross-site' },
      ];
      for (const foreign of foreignOrigins) {
        const res = await call(route, { cookie: caller.cookie, ...foreign });
        answers.push([key(route), res.status, res.body.error]);
      }
    }
    expect(answers).toEqual(unsafe.flatMap((r) => Array(2).fill([key(r), 403, 'csrf_rejected'])));
    expect(await snapshot()).toBe(before);
  });
});
