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
});
