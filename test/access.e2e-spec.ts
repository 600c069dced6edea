import { RouteRule as Route, routeKey as key, routeRules } from '../src/common/http/route-rules';
import { ADMIN_ENV, LoggedIn, loginAdmin, registerAndLogin } from './support/auth';
import { databaseSnapshot } from './support/snapshot';
import { startTestApp, TestApp } from './support/test-app';

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
    routes = routeRules(t.app);
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
    // Written out, not read from the decorators the guard reads: a route that gains
    // @Public or @AllowAnonymousSession by mistake changes these lists and fails here.
    expect(
      routes
        .filter((r) => r.isPublic)
        .map(key)
        .sort(),
    ).toEqual([
      'GET /',
      'GET /health',
      'GET /health/ready',
      'POST /api/session',
      'POST /api/track/action',
      'POST /api/track/events',
      'POST /api/track/page',
      'POST /auth/login',
      'POST /auth/register',
    ]);
    expect(
      routes
        .filter((r) => !r.isPublic && r.allowAnonymous)
        .map(key)
        .sort(),
    ).toEqual([
      'DELETE /api/session/data/:key',
      'GET /api/session',
      'GET /api/session/data',
      'GET /api/session/data/:key',
      'POST /auth/logout',
      'PUT /api/session/data/:key',
    ]);
    expect(
      routes
        .filter((r) => r.adminOnly && !shouldBeAdmin.includes(r))
        .map(key)
        .sort(),
    ).toEqual(['GET /api/compliance/processing', 'GET /api/track/stream']);
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
      forUsers.map((r) => [
        key(r),
        401,
        'Authentication required: this route needs a signed-in user, not an anonymous session',
      ]),
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

  it('documents these answers in the OpenAPI document, with the error body schema', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body;
    type Response = { description: string; content?: Record<string, { schema: { $ref: string } }> };
    const responsesOf = (route: Route): Record<string, Response> =>
      doc.paths[route.pattern.replace(/:([A-Za-z_]+)/g, '{$1}')][route.method.toLowerCase()]
        .responses;
    const errorSchema = '#/components/schemas/ErrorResponseDto';
    const missing: string[] = [];
    for (const route of routes) {
      const responses = responsesOf(route);
      const expected = [
        ...(route.isPublic ? [] : ['401']),
        ...(route.adminOnly || route.method !== 'GET' ? ['403'] : []),
        // Routes without a body refuse one: 400 for fields, 413 and 415 like the others.
        ...(route.takesBody || route.method !== 'GET' ? ['413', '415'] : []),
        ...(route.method !== 'GET' && !route.takesBody ? ['400'] : []),
      ];
      for (const code of expected) {
        if (responses[code]?.content?.['application/json'].schema.$ref !== errorSchema) {
          missing.push(`${key(route)} ${code}`);
        }
      }
    }
    expect(missing).toEqual([]);
    const withBody = routes.filter((r) => r.takesBody).map(key);
    expect(withBody).toEqual(
      expect.arrayContaining([
        'POST /auth/login',
        'POST /api/analytics/funnel',
        'PUT /api/preferences',
      ]),
    );
    expect(withBody).not.toContain('DELETE /api/gdpr/delete');
    // No general rate limit in this app (RATE_LIMIT_MAX=0): no 429 but the login throttle's.
    expect(routes.filter((r) => responsesOf(r)['429']).map(key)).toEqual([
      'POST /auth/login',
      'POST /auth/password',
      'POST /auth/reauth',
    ]);
    expect(
      routes
        .filter(
          (r) => r.needsFreshAuth && !responsesOf(r)['403'].description.includes('reauth_required'),
        )
        .map(key),
    ).toEqual([]);
    // Pagination parameters are documented (and with them the 400).
    const history = doc.paths['/api/consent/history'].get;
    expect(history.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'cursor',
      'limit',
    ]);
    expect(history.responses['400'].content['application/json'].schema.$ref).toBe(
      '#/components/schemas/ErrorResponseDto',
    );
    expect(doc.components.schemas.ErrorResponseDto.properties.details.items.$ref).toBe(
      '#/components/schemas/ErrorDetailDto',
    );
    // Descriptions written on a handler are kept beside the derived ones.
    const erase = responsesOf(routes.find((r) => key(r) === 'DELETE /api/gdpr/delete')!);
    expect(erase['403'].description).toContain('`reauth_required`');
    expect(erase['403'].description).toContain('`csrf_rejected`');
    expect(erase['400'].description).toBe('A body with fields: this route takes none');
    // A session is optional on public routes, required elsewhere.
    const auth = [{ session_cookie: [] }, { bearer: [] }, { session_header: [] }];
    expect(doc.security).toEqual(auth);
    expect(doc.paths['/health'].get.security).toEqual([{}, ...auth]);
    expect(doc.paths['/auth/login'].post.security).toEqual([{}, ...auth]);
    expect(doc.paths['/api/me'].get.security).toBeUndefined();
    expect(doc.components.securitySchemes.bearer.bearerFormat).toBe('opaque');
    // CSV downloads are text; session data values any JSON.
    expect(doc.paths['/api/analytics/report'].get.responses['200'].content['text/csv']).toEqual({
      schema: { type: 'string' },
    });
    expect(doc.components.schemas.PutSessionDataDto.properties.value.oneOf).toHaveLength(5);
    expect(doc.components.schemas.ErrorResponseDto.required).toEqual(
      expect.arrayContaining(['status_code', 'error', 'message', 'request_id', 'session_id']),
    );
  });
});
