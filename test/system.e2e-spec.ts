import { ADMIN_ENV, loginAdmin } from './support/auth';
import { startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

describe('system endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(ADMIN_ENV);
  });
  afterAll(async () => {
    await t.close();
  });

  it('GET / names the service and its docs', async () => {
    const res = await t.http().get('/').expect(200);
    expect(res.body).toEqual({ name: 'session-activity-service', version: '0.1.0', docs: '/docs' });
  });

  it('GET /health reports liveness', async () => {
    const res = await t.http().get('/health').expect(200);
    expect(res.body.status).toBe('ok');
    // The process's uptime: more than nothing, no more than this test process has run.
    expect(res.body.uptime_s).toBeGreaterThan(0);
    expect(res.body.uptime_s).toBeLessThanOrEqual(Math.ceil(process.uptime())); // whole seconds
  });

  it('GET /health/ready reports the database up', async () => {
    const res = await t.http().get('/health/ready').expect(200);
    expect(res.body).toEqual({
      status: 'ok',
      checks: { database: 'up' },
      tracking: {
        queued: 0,
        dropped_events: 0,
        failed_events: 0,
        rebuilt_summaries: 0,
        writer: TEST_DB_TYPE === 'postgres' ? 'pool' : 'thread',
      },
    });
  });

  it('GET /docs serves Swagger UI, its assets under a same-origin CSP, and /docs-yaml the spec', async () => {
    const page = await t.http().get('/docs').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('<title>Swagger UI</title>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    // Every script and stylesheet the page names is served (the UI would be blank otherwise).
    const assets = [...page.text.matchAll(/(?:src|href)="\.\/(docs\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets).toEqual(
      expect.arrayContaining(['docs/swagger-ui-bundle.js', 'docs/swagger-ui-init.js']),
    );
    for (const asset of assets) {
      const res = await t.http().get(`/${asset}`);
      expect([asset, res.status]).toEqual([asset, 200]);
    }
    // A path under /docs that names no asset: 404 (the wildcard route matched, nothing found).
    const missing = await t.http().get('/docs/nonexistent.js').expect(404);
    expect(missing.body.status_code).toBe(404);
    const yaml = await t.http().get('/docs-yaml').expect(200);
    expect(yaml.headers['content-type']).toMatch(/^text\/yaml/);
    expect(yaml.text).toMatch(/^openapi: 3\.0\.0\n/);
    expect(yaml.text).toContain('/api/analytics/report:');
  });

  it('GET /docs-json states the limits validation enforces where they are named constants', async () => {
    // The Swagger plugin reads literal arguments of class-validator decorators only: these
    // limits come from constants or expressions and are stated with ApiProperty.
    const doc = (await t.http().get('/docs-json').expect(200)).body as {
      components: { schemas: Record<string, { properties: Record<string, object> }> };
      paths: Record<string, Record<string, { parameters: { name: string; schema: object }[] }>>;
    };
    const property = (schema: string, name: string) =>
      doc.components.schemas[schema].properties[name];
    const parameter = (path: string, name: string) =>
      doc.paths[path].get.parameters.find((p) => p.name === name)?.schema;
    expect(property('RegisterDto', 'username')).toMatchObject({
      pattern: '^[A-Za-z0-9._-]{3,64}$',
      minLength: 3,
      maxLength: 64,
    });
    expect(property('TrackPageDto', 'page')).toMatchObject({ minLength: 1, maxLength: 2048 });
    expect(property('TrackPageDto', 'referrer')).toMatchObject({ maxLength: 2048 });
    expect(property('BatchEventDto', 'page')).toMatchObject({ minLength: 1, maxLength: 2048 });
    for (const [schema, name] of [
      ['TrackActionDto', 'action'],
      ['TrackActionDto', 'feature'],
      ['BatchEventDto', 'name'],
    ]) {
      expect(property(schema, name)).toMatchObject({ pattern: '^[A-Za-z0-9._:/-]{1,128}$' });
    }
    // Whole numbers are integers, not any number.
    expect(property('FunnelDto', 'window_s')).toMatchObject({
      type: 'integer',
      minimum: 60,
      maximum: 7_776_000,
    });
    expect(property('RetentionDto', 'periods')).toMatchObject({ type: 'integer' });
    expect(parameter('/api/activities', 'limit')).toEqual({
      type: 'integer',
      minimum: 1,
      maximum: 1000,
    });
    expect(parameter('/api/analytics/patterns', 'n')).toEqual({
      type: 'integer',
      minimum: 2,
      maximum: 4,
    });
    expect(parameter('/api/analytics/active-users', 'hours')).toMatchObject({ type: 'integer' });
  });

  it('GET /docs-json documents a success response for every operation', async () => {
    const res = await t.http().get('/docs-json').expect(200);
    type Operation = { responses: Record<string, { content?: unknown }> };
    const paths = res.body.paths as Record<string, Record<string, Operation>>;
    const withoutSuccess = Object.entries(paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, op]) => !Object.keys(op.responses).some((code) => code.startsWith('2')))
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(withoutSuccess).toEqual([]);
    // ...and says what it answers with (a schema for some content type).
    const withoutSchema = Object.entries(paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, op]) =>
          Object.entries(op.responses).every(
            ([code, response]) => !code.startsWith('2') || response.content === undefined,
          ),
        )
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(withoutSchema).toEqual([]);
    const schemaOf = (method: string, path: string, code: string) =>
      (
        paths[path][method].responses[code].content as {
          'application/json': { schema: { $ref: string } };
        }
      )['application/json'].schema.$ref;
    // Routes that also document errors, where the success response used to be missing.
    expect(schemaOf('post', '/auth/login', '200')).toBe('#/components/schemas/LoginResponseDto');
    expect(schemaOf('post', '/auth/register', '201')).toBe('#/components/schemas/UserEnvelopeDto');
    expect(schemaOf('post', '/api/track/events', '200')).toBe(
      '#/components/schemas/BatchResultDto',
    );
    expect(schemaOf('post', '/api/session', '201')).toBe('#/components/schemas/SessionCreatedDto');
    expect(schemaOf('delete', '/api/gdpr/delete', '200')).toBe(
      '#/components/schemas/ErasureResultDto',
    );
    expect(schemaOf('get', '/health/ready', '200')).toBe('#/components/schemas/ReadinessDto');
    // Audit entries without details (e.g. `export`) answer null there.
    expect(res.body.components.schemas.AuditEntryDto.properties.details).toMatchObject({
      type: 'object',
      nullable: true,
    });
  });

  it.each([
    ['get', '/api/analytics/overview', 'OverviewDto', null],
    ['get', '/api/analytics/active-users/series', 'ActiveSeriesDto', null],
    ['get', '/api/analytics/realtime', 'RealtimeDto', null],
    ['get', '/api/analytics/sessions', 'SessionStatsDto', null],
    ['get', '/api/analytics/patterns', 'PatternsDto', null],
    ['get', '/api/analytics/features?features=export', 'FeaturesDto', null],
    ['post', '/api/analytics/retention', 'RetentionResultDto', { period: 'week', periods: 2 }],
    ['get', '/api/analytics/report', 'SystemReportDto', null],
    ['get', '/api/analytics/user', 'UserSummaryDto', null],
    ['get', '/api/analytics/journey', 'JourneyDto', null],
    ['get', '/api/consent', 'CurrentConsentsDto', null],
    ['get', '/api/admin/retention', 'RetentionStatusDto', null],
    ['get', '/api/admin/audit', 'AuditPageDto', null],
  ])(
    '%s %s answers with the fields its documented schema (%s) names',
    async (method, path, schema, body) => {
      const docs = (await t.http().get('/docs-json').expect(200)).body;
      const route = path.split('?')[0];
      const documented =
        docs.paths[route][method].responses['200'].content['application/json'].schema;
      expect(documented.$ref).toBe(`#/components/schemas/${schema}`);
      const { properties, required } = docs.components.schemas[schema];
      expect(required).toEqual(Object.keys(properties).filter((p) => required.includes(p)));
      const admin = await loginAdmin(t);
      const call =
        method === 'post'
          ? t
              .http()
              .post(path)
              .send(body ?? {})
          : t.http().get(path);
      const res = await call.set('authorization', admin.bearer).expect(200);
      expect(Object.keys(res.body).sort()).toEqual(Object.keys(properties).sort());
      expect(Object.keys(res.body).sort()).toEqual([...required].sort());
    },
  );
});
