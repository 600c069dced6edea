import { registerAndLogin, sleep } from './support/auth';
import { startTestApp, TestApp } from './support/test-app';
import { SessionCleanupService } from '../src/modules/session/session-cleanup.service';
import { turnedBefore } from './support/event-loop';

describe('session data', () => {
  let t: TestApp;
  let bearer: string;
  beforeAll(async () => {
    t = await startTestApp({ SESSION_DATA_VALUE_MAX_BYTES: '100', SESSION_DATA_MAX_BYTES: '250' });
    bearer = (await registerAndLogin(t, 'datum')).bearer;
  });
  afterAll(async () => {
    await t.close();
  });
  const http = () => ({
    get: (path: string) => t.http().get(path).set('authorization', bearer),
    put: (path: string) => t.http().put(path).set('authorization', bearer),
    delete: (path: string) => t.http().delete(path).set('authorization', bearer),
  });

  beforeEach(async () => {
    await t.dataSource.query('DELETE FROM session_data');
  });

  it('stores, reads, lists and deletes keys with any JSON value', async () => {
    await http()
      .put('/api/session/data/cart')
      .send({ value: { items: [1], total: 9.5 } })
      .expect(200);
    await http().put('/api/session/data/flag').send({ value: false }).expect(200);
    await http().put('/api/session/data/nothing').send({ value: null }).expect(200);
    const one = await http().get('/api/session/data/cart').expect(200);
    expect(one.body).toEqual({ key: 'cart', value: { items: [1], total: 9.5 } });
    const all = await http().get('/api/session/data').expect(200);
    expect(all.body).toEqual({
      data: { cart: { items: [1], total: 9.5 }, flag: false, nothing: null },
    });
    const session = await http().get('/api/session').expect(200);
    expect(session.body.session.data).toEqual(all.body.data);
    await http().put('/api/session/data/cart').send({ value: 'replaced' }).expect(200);
    expect((await http().get('/api/session/data/cart')).body.value).toBe('replaced');
    const deleted = await http().delete('/api/session/data/cart').expect(200);
    expect(deleted.body.status).toBe('success');
    await http().get('/api/session/data/cart').expect(404);
  });

  it('answers 404 for an absent key on read and delete', async () => {
    const res = await http().get('/api/session/data/missing').expect(404);
    expect(res.body.message).toBe('No session data under "missing"');
    await http().delete('/api/session/data/missing').expect(404);
  });

  it('validates keys and bodies', async () => {
    const badKey = 'key must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"';
    for (const key of ['k'.repeat(129), 'bad%20key']) {
      const res = await http().put(`/api/session/data/${key}`).send({ value: 1 }).expect(400);
      expect([key, res.body.message, res.body.details]).toEqual([
        key,
        badKey,
        [{ field: 'key', errors: [badKey] }],
      ]);
    }
    const missing = await http().put('/api/session/data/k').send({}).expect(400);
    expect(missing.body.message).toBe('value is required (any JSON value)');
    expect(missing.body.details).toEqual([
      { field: 'value', errors: ['value is required (any JSON value)'] },
    ]);
    const extra = await http().put('/api/session/data/k').send({ value: 1, other: 2 }).expect(400);
    expect(extra.body.details.map((d: { field: string }) => d.field)).toEqual(['other']);
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM session_data');
    expect(Number(n)).toBe(0);
  });

  it('refuses a value over SESSION_DATA_VALUE_MAX_BYTES with 413, storing nothing', async () => {
    const big = await http()
      .put('/api/session/data/big')
      .send({ value: 'x'.repeat(99) })
      .expect(413);
    expect(big.body.message).toBe(
      'The value is 101 bytes as JSON; at most 100 are allowed per key',
    );
    await http()
      .put('/api/session/data/fits')
      .send({ value: 'x'.repeat(98) })
      .expect(200); // 100 bytes with quotes
    await http().get('/api/session/data/big').expect(404);
  });

  it('refuses a write that would take the session over SESSION_DATA_MAX_BYTES, storing nothing', async () => {
    await http()
      .put('/api/session/data/a')
      .send({ value: 'x'.repeat(98) })
      .expect(200);
    await http()
      .put('/api/session/data/b')
      .send({ value: 'x'.repeat(98) })
      .expect(200);
    const res = await http()
      .put('/api/session/data/c')
      .send({ value: 'x'.repeat(60) })
      .expect(413);
    expect(res.body.message).toMatch(/at most 250 are allowed per session/);
    await http().get('/api/session/data/c').expect(404);
    // Replacing a key counts its new size, not old + new.
    await http()
      .put('/api/session/data/b')
      .send({ value: 'y'.repeat(48) })
      .expect(200);
  });

  it('counts the keys in SESSION_DATA_MAX_BYTES too: long keys with tiny values add up', async () => {
    const key = (i: number) => `${'k'.repeat(119)}-${i}`; // 121 bytes
    await http()
      .put(`/api/session/data/${key(1)}`)
      .send({ value: 0 })
      .expect(200); // 122
    await http()
      .put(`/api/session/data/${key(2)}`)
      .send({ value: 0 })
      .expect(200); // 244
    const res = await http()
      .put(`/api/session/data/${key(3)}`)
      .send({ value: 0 })
      .expect(413);
    expect(res.body.message).toBe(
      'Session data would be 366 bytes (keys and JSON values); at most 250 are allowed per session',
    );
    const all = await http().get('/api/session/data').expect(200);
    expect(all.body).toEqual({ data: { [key(1)]: 0, [key(2)]: 0 } });
  });

  it('refuses a number beyond a double (1e309) rather than storing null', async () => {
    const res = await http()
      .put('/api/session/data/huge')
      .set('content-type', 'application/json')
      .send('{"value": 1e309}')
      .expect(400);
    expect(res.body.message).toBe(
      'Body contains a number too large to be represented (like 1e309)',
    );
    await http().get('/api/session/data/huge').expect(404);
    // A large finite number is kept as it is.
    await http()
      .put('/api/session/data/huge')
      .set('content-type', 'application/json')
      .send('{"value": 1e300}')
      .expect(200);
    expect((await http().get('/api/session/data/huge').expect(200)).body).toEqual({
      key: 'huge',
      value: 1e300,
    });
  });

  it('keeps every one of 20 parallel writes of different keys', async () => {
    const big = await startTestApp();
    try {
      const s = await registerAndLogin(big, 'parallel');
      const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
      const results = await Promise.all(
        keys.map((key, i) =>
          big
            .http()
            .put(`/api/session/data/${key}`)
            .set('authorization', s.bearer)
            .send({ value: i }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(keys.map(() => 200));
      const all = await big
        .http()
        .get('/api/session/data')
        .set('authorization', s.bearer)
        .expect(200);
      expect(all.body.data).toEqual(Object.fromEntries(keys.map((key, i) => [key, i])));
    } finally {
      await big.close();
    }
  });

  it('needs a session', async () => {
    await t.http().get('/api/session/data').expect(401);
    await t.http().put('/api/session/data/k').send({ value: 1 }).expect(401);
  });
});

describe('session cleanup job', () => {
  it('deletes expired and revoked sessions with their data, recording expiries', async () => {
    const t = await startTestApp({ SESSION_IDLE_TIMEOUT_S: '1', SESSION_TOUCH_INTERVAL_S: '0' });
    try {
      const expiring = await registerAndLogin(t, 'expiring');
      await t
        .http()
        .put('/api/session/data/k')
        .set('authorization', expiring.bearer)
        .send({ value: 1 })
        .expect(200);
      const leaving = await registerAndLogin(t, 'leaving');
      await t.http().post('/auth/logout').set('authorization', leaving.bearer).expect(200);
      await sleep(1100);
      const staying = await registerAndLogin(t, 'staying');

      const result = await t.app.get(SessionCleanupService).run();
      expect(result).toEqual({ expired: 1, revoked: 1, loginFailures: 0 });

      const ids = (await t.dataSource.query('SELECT id FROM sessions')).map(
        (r: { id: string }) => r.id,
      );
      expect(ids).toEqual([staying.sessionId]);
      const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM session_data');
      expect(Number(n)).toBe(0);
      const [event] = await t.dataSource.query(
        `SELECT type, user_id FROM session_events WHERE session_id = '${expiring.sessionId}' AND type = 'expired'`,
      );
      expect(event).toEqual({ type: 'expired', user_id: expiring.userId });
      await t.http().get('/api/session').set('authorization', staying.bearer).expect(200);
      expect(await t.app.get(SessionCleanupService).run()).toEqual({
        expired: 0,
        revoked: 0,
        loginFailures: 0,
      });
    } finally {
      await t.close();
    }
  });

  it('works through more rows than one batch, letting requests in between batches', async () => {
    const t = await startTestApp();
    try {
      const now = Date.now();
      const values = Array.from(
        { length: 2500 },
        (_, i) =>
          `('00000000-0000-4000-8000-${String(i).padStart(12, '0')}', '${String(i).padStart(64, '0')}', NULL, ${now - 10}, ${now - 10}, ${now - 5}, ${now + 1000}, NULL, false, NULL, NULL, NULL, NULL)`,
      );
      await t.dataSource.query(
        `INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at,
           absolute_expires_at, auth_time, remember_me, ip, user_agent, revoked_at, revoked_reason)
         VALUES ${values.join(', ')}`,
      );
      const run = t.app.get(SessionCleanupService).run();
      expect(await turnedBefore(run)).toBe(true);
      const result = await run;
      expect(result?.expired).toBe(2500);
      const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM sessions');
      expect(Number(n)).toBe(0);
    } finally {
      await t.close();
    }
  });
});
