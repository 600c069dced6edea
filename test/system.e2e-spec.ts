import { startTestApp, TestApp } from './support/test-app';

describe('system endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
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
    expect(typeof res.body.uptime_s).toBe('number');
  });

  it('GET /health/ready reports the database up', async () => {
    const res = await t.http().get('/health/ready').expect(200);
    expect(res.body).toEqual({
      status: 'ok',
      checks: { database: 'up' },
      tracking: { queued: 0, dropped_events: 0, failed_events: 0, rebuilt_summaries: 0 },
    });
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
  });
});
