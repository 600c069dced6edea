import { Logger } from '@nestjs/common';
import {
  ADMIN_ENV,
  login,
  loginAdmin,
  PASSWORD,
  register,
  registerAndLogin,
  sleep,
} from './support/auth';
import { DatabaseService } from '../src/common/database/database.service';
import { SessionService } from '../src/modules/session/session.service';
import { UsersService } from '../src/modules/users/users.service';
import { ErasureService } from '../src/modules/compliance/erasure.service';
import { eventually } from './support/eventually';
import { startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

const liveTokens = async (t: TestApp, tokens: string[]) => {
  const results = await Promise.all(
    tokens.map((token) => t.http().get('/api/session').set('authorization', `Bearer ${token}`)),
  );
  return results.filter((res) => res.status === 200).length;
};

describe('sessions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...ADMIN_ENV,
      SESSION_MAX_PER_USER: '3',
      CORS_ORIGINS: 'https://app.example.com',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  describe('CORS (CORS_ORIGINS set)', () => {
    it.each(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])(
      'lets an allowed origin send %s with credentials, and no other origin',
      async (method) => {
        const allowed = await t
          .http()
          .options('/api/preferences')
          .set('origin', 'https://app.example.com')
          .set('access-control-request-method', method)
          .expect(204);
        expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
        expect(allowed.headers['access-control-allow-credentials']).toBe('true');
        expect(allowed.headers['access-control-allow-methods'].split(/,\s*/)).toContain(method);
        // Answered by the CORS plugin before the app's own hooks ran, yet with their headers.
        expect(allowed.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
        expect(allowed.headers['x-content-type-options']).toBe('nosniff');
        expect(allowed.headers['x-frame-options']).toBe('SAMEORIGIN');
        const foreign = await t
          .http()
          .options('/api/preferences')
          .set('origin', 'https://evil.example')
          .set('access-control-request-method', method);
        expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
      },
    );

    it('answers an OPTIONS request that is no preflight with a JSON 400', async () => {
      for (const headers of [{}, { origin: 'https://app.example.com' }]) {
        const req = t.http().options('/api/preferences');
        for (const [name, value] of Object.entries(headers)) req.set(name, value);
        const res = await req.expect(400);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect([res.body.status_code, res.body.error, res.body.message]).toEqual([
          400,
          'Bad Request',
          'Not a CORS preflight request: OPTIONS needs the Origin and Access-Control-Request-Method headers',
        ]);
        expect(res.body.request_id).toBe(res.headers['x-request-id']);
        expect(res.headers['x-content-type-options']).toBe('nosniff');
      }
    });

    it('keeps 404 for unknown paths and 405 for wrong methods (the preflight route matches every path)', async () => {
      const unknown = await t.http().get('/nope').expect(404);
      expect(unknown.body.message).toBe('No route for GET /nope');
      const wrong = await t.http().delete('/health').expect(405);
      expect(wrong.headers.allow).toBe('GET, HEAD');
    });
  });

  describe('anonymous sessions', () => {
    it('are created only by POST /api/session, never by a GET', async () => {
      const get = await t.http().get('/api/session').expect(401);
      expect(get.headers['set-cookie']).toBeUndefined();
      const res = await t.http().post('/api/session').expect(201);
      expect(res.body.session_id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(res.body.session).toMatchObject({ anonymous: true, user_id: null, auth_time: null });
      const cookie = ([] as string[]).concat(res.headers['set-cookie'])[0];
      expect(cookie).toMatch(/^session_id=[A-Za-z0-9_-]{43};.*HttpOnly/);
      const current = await t
        .http()
        .get('/api/session')
        .set('x-session-id', res.body.session_id)
        .expect(200);
      expect(current.body).toMatchObject({
        user_id: null,
        session: { id: res.body.session.id, anonymous: true, data: {} },
      });
    });

    it('gives a caller who already has a session that session (200, no new token)', async () => {
      const first = await t.http().post('/api/session').expect(201);
      const again = await t
        .http()
        .post('/api/session')
        .set('x-session-id', first.body.session_id)
        .expect(200);
      expect(again.body.session.id).toBe(first.body.session.id);
      expect(again.body.session_id).toBeUndefined();
    });

    it('cannot reach user-only routes', async () => {
      const anon = await t.http().post('/api/session').expect(201);
      const res = await t
        .http()
        .get('/api/me')
        .set('x-session-id', anon.body.session_id)
        .expect(401);
      expect(res.body.message).toBe(
        'Authentication required: this route needs a signed-in user, not an anonymous session',
      );
    });

    it('keep their id and data when the user logs in, with a new token', async () => {
      await register(t, 'shopper');
      const anon = await t.http().post('/api/session').expect(201);
      const anonToken = anon.body.session_id as string;
      await t
        .http()
        .put('/api/session/data/cart')
        .set('x-session-id', anonToken)
        .send({ value: { items: [1, 2] } })
        .expect(200);
      const s = await login(t, 'shopper', PASSWORD, { headers: { 'x-session-id': anonToken } });
      expect(s.sessionId).toBe(anon.body.session.id);
      expect(s.token).not.toBe(anonToken);
      await t.http().get('/api/session').set('x-session-id', anonToken).expect(401);
      const res = await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      expect(res.body).toMatchObject({
        user_id: s.userId,
        session: { id: anon.body.session.id, anonymous: false, data: { cart: { items: [1, 2] } } },
      });
      const events = await t.dataSource.query(
        `SELECT type, reason, user_id FROM session_events WHERE session_id = '${s.sessionId}' ORDER BY id`,
      );
      expect(events).toEqual([
        // The session's history went to its user at login (exports and erasure find it by user).
        { type: 'created', reason: null, user_id: s.userId },
        { type: 'rotated', reason: 'login', user_id: s.userId },
      ]);
    });

    it('can be switched off (403)', async () => {
      const off = await startTestApp({ ANONYMOUS_SESSIONS: 'false' });
      try {
        const res = await off.http().post('/api/session').expect(403);
        expect(res.body.error).toBe('anonymous_sessions_disabled');
      } finally {
        await off.close();
      }
    });
  });

  describe('rotation', () => {
    it('login from a user session kills the old token', async () => {
      const first = await registerAndLogin(t, 'rotor');
      const second = await login(t, 'rotor', PASSWORD, {
        headers: { authorization: first.bearer },
      });
      expect(second.sessionId).not.toBe(first.sessionId);
      await t.http().get('/api/session').set('authorization', first.bearer).expect(401);
      await t.http().get('/api/session').set('authorization', second.bearer).expect(200);
    });

    it('POST /auth/reauth rotates the token and stamps auth_time', async () => {
      const s = await registerAndLogin(t, 'reauther');
      await sleep(15);
      const res = await t
        .http()
        .post('/auth/reauth')
        .set('authorization', s.bearer)
        .send({ password: PASSWORD })
        .expect(200);
      expect(res.body.session_id).not.toBe(s.token);
      expect(res.body.session.id).toBe(s.sessionId);
      expect(Date.parse(res.body.session.auth_time)).toBeGreaterThan(
        Date.parse(s.body.session.auth_time),
      );
      await t.http().get('/api/session').set('authorization', s.bearer).expect(401);
      await t
        .http()
        .get('/api/session')
        .set('authorization', `Bearer ${res.body.session_id}`)
        .expect(200);
    });

    it('POST /auth/reauth with a wrong password is 401 and rotates nothing', async () => {
      const s = await registerAndLogin(t, 'reauth-wrong');
      const res = await t
        .http()
        .post('/auth/reauth')
        .set('authorization', s.bearer)
        .send({ password: 'nope nope' })
        .expect(401);
      expect(res.body.message).toBe('Wrong password');
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
    });
  });

  describe('fresh authentication', () => {
    it('asks for reauth before revoking sessions in bulk once auth_time is old', async () => {
      const fresh = await startTestApp({ FRESH_AUTH_MAX_AGE_S: '1' });
      try {
        const s = await registerAndLogin(fresh, 'stale');
        await sleep(1100);
        const res = await fresh
          .http()
          .delete('/api/sessions?scope=others')
          .set('authorization', s.bearer)
          .expect(403);
        expect(res.body.error).toBe('reauth_required');
        const reauth = await fresh
          .http()
          .post('/auth/reauth')
          .set('authorization', s.bearer)
          .send({ password: PASSWORD })
          .expect(200);
        const ok = await fresh
          .http()
          .delete('/api/sessions?scope=others')
          .set('authorization', `Bearer ${reauth.body.session_id}`)
          .expect(200);
        expect(ok.body).toEqual({ revoked: 0 });
      } finally {
        await fresh.close();
      }
    });
  });

  describe('races', () => {
    it('lets only one of parallel reauths with one token rotate it: every token answered works', async () => {
      const s = await registerAndLogin(t, 'double-reauth');
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          t.http().post('/auth/reauth').set('authorization', s.bearer).send({ password: PASSWORD }),
        ),
      );
      const rotated = answers.filter((res) => res.status === 200);
      expect(rotated.length).toBeGreaterThanOrEqual(1);
      expect(answers.every((res) => [200, 401].includes(res.status))).toBe(true);
      const tokens = rotated.map((res) => res.body.session_id as string);
      expect(await liveTokens(t, tokens)).toBe(tokens.length);
      expect(await liveTokens(t, [s.token])).toBe(0);
    });

    it.each([
      [
        'the password changed',
        'UPDATE users SET password_hash = ? WHERE id = ?',
        (id: string) => ['scrypt$other', id],
      ],
      [
        'the account was disabled',
        'UPDATE users SET disabled = ? WHERE id = ?',
        (id: string) => [true, id],
      ],
      ['the account was erased', 'DELETE FROM users WHERE id = ?', (id: string) => [id]],
    ])(
      'refuses (401) a login whose password was checked before %s',
      async (_label, sql, params) => {
        const username = `late-login-${Math.random().toString(36).slice(2, 8)}`;
        await register(t, username);
        const verified = await t.app.get(UsersService).verifyCredentials(username, PASSWORD);
        expect(verified).not.toBeNull();
        const { passwordHash, ...user } = verified!;
        await t.app.get(DatabaseService).execute(sql, params(user.id));
        const meta = { ip: null, userAgent: null };
        await expect(
          t.app.get(SessionService).login(user, passwordHash, false, meta, undefined),
        ).rejects.toMatchObject({ status: 401 });
        const [{ n }] = await t.dataSource.query(
          `SELECT COUNT(*) AS n FROM sessions WHERE user_id = '${user.id}'`,
        );
        expect(Number(n)).toBe(0);
      },
    );

    it('counts and logs a session revoked twice at once only once', async () => {
      const s = await registerAndLogin(t, 'double-revoke');
      const service = t.app.get(SessionService);
      const counts = await Promise.all([
        service.revoke([s.sessionId], 'logout', null),
        service.revoke([s.sessionId], 'admin', null),
      ]);
      expect(counts.sort()).toEqual([0, 1]);
      const events = await t.dataSource.query(
        `SELECT type FROM session_events WHERE session_id = '${s.sessionId}' AND type = 'revoked'`,
      );
      expect(events).toHaveLength(1);
    });
  });

  describe('POST /auth/password', () => {
    it('changes the password, rotates this session and revokes the others', async () => {
      await register(t, 'changer');
      const a = await login(t, 'changer');
      const b = await login(t, 'changer');
      const res = await t
        .http()
        .post('/auth/password')
        .set('authorization', a.bearer)
        .send({ current_password: PASSWORD, new_password: 'a brand new password' })
        .expect(200);
      expect(res.body).toMatchObject({
        status: 'success',
        revoked: 1,
        session: { id: a.sessionId },
      });
      await t.http().get('/api/session').set('authorization', a.bearer).expect(401);
      await t.http().get('/api/session').set('authorization', b.bearer).expect(401);
      await t
        .http()
        .get('/api/session')
        .set('authorization', `Bearer ${res.body.session_id}`)
        .expect(200);
      await t
        .http()
        .post('/auth/login')
        .send({ username: 'changer', password: PASSWORD })
        .expect(401);
      await login(t, 'changer', 'a brand new password');
      const [row] = await t.dataSource.query(
        `SELECT revoked_reason FROM sessions WHERE id = '${b.sessionId}'`,
      );
      expect(row.revoked_reason).toBe('password_change');
    });

    it('refuses a wrong current password with 401 and changes nothing', async () => {
      const s = await registerAndLogin(t, 'changer2');
      const res = await t
        .http()
        .post('/auth/password')
        .set('authorization', s.bearer)
        .send({ current_password: 'wrong one!', new_password: 'another password' })
        .expect(401);
      expect(res.body.message).toBe('Wrong current password');
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      await login(t, 'changer2');
    });

    it('validates the new password (400)', async () => {
      const s = await registerAndLogin(t, 'changer3');
      const res = await t
        .http()
        .post('/auth/password')
        .set('authorization', s.bearer)
        .send({ current_password: PASSWORD, new_password: 'short' })
        .expect(400);
      expect(res.body.details[0].field).toBe('new_password');
    });
  });

  describe('device list and revocation', () => {
    it('lists live sessions, most recent first, marking the current one', async () => {
      await register(t, 'devices');
      const a = await login(t, 'devices', PASSWORD, {
        headers: {
          'user-agent':
            'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
        },
      });
      await sleep(5);
      const b = await login(t, 'devices');
      const res = await t.http().get('/api/sessions').set('authorization', b.bearer).expect(200);
      expect(res.body.items.map((s: { id: string }) => s.id)).toEqual([b.sessionId, a.sessionId]);
      expect(res.body.items.map((s: { current: boolean }) => s.current)).toEqual([true, false]);
      expect(res.body.items[1].device).toEqual({
        browser: 'Mobile Safari 17',
        os: 'iOS 17.0',
        type: 'mobile',
      });
      expect(Object.keys(res.body.items[0]).sort()).toEqual(
        [
          'absolute_expires_at',
          'anonymous',
          'auth_time',
          'created_at',
          'current',
          'device',
          'expires_at',
          'id',
          'idle_expires_at',
          'ip_address',
          'last_activity',
          'remember_me',
          'user_agent',
          'user_id',
        ].sort(),
      );
    });

    it('takes ids in upper case as the same ids (UUIDs are case-insensitive)', async () => {
      const admin = await loginAdmin(t);
      await register(t, 'upper-ids');
      const a = await login(t, 'upper-ids');
      const b = await login(t, 'upper-ids');
      const upper = (id: string) => id.toUpperCase();
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', a.bearer)
        .send({ page: '/upper-case' })
        .expect(200);
      const asAdmin = (path: string) =>
        t.http().get(path).set('authorization', admin.bearer).expect(200);

      const sessions = await asAdmin(`/api/admin/users/${upper(a.userId)}/sessions`);
      expect(sessions.body.items.map((s: { id: string }) => s.id).sort()).toEqual(
        [a.sessionId, b.sessionId].sort(),
      );
      const events = await asAdmin(`/api/admin/session-events?user_id=${upper(a.userId)}`);
      expect(events.body.items.length).toBeGreaterThanOrEqual(2);
      expect(new Set(events.body.items.map((e: { user_id: string }) => e.user_id))).toEqual(
        new Set([a.userId]),
      );
      const theirActivities = await asAdmin(`/api/admin/users/${upper(a.userId)}/activities`);
      expect(theirActivities.body.items.map((e: { page: string }) => e.page)).toContain(
        '/upper-case',
      );
      // The three reads above are audited, asynchronously: compare once their entries are in.
      const audit = await eventually(
        () => asAdmin(`/api/admin/audit?user_id=${upper(a.userId)}`),
        (res) => res.body.items.length >= 3,
      );
      expect(audit.body.items.map((e: { action: string }) => e.action).sort()).toEqual([
        'admin_activities_read',
        'admin_session_events_read',
        'admin_sessions_read',
      ]);
      expect(audit.body).toEqual((await asAdmin(`/api/admin/audit?user_id=${a.userId}`)).body);

      const own = await t
        .http()
        .get(`/api/activities?session_id=${upper(a.sessionId)}`)
        .set('authorization', a.bearer)
        .expect(200);
      expect(own.body.items.map((e: { page: string }) => e.page)).toContain('/upper-case');
      const journey = await t
        .http()
        .get(`/api/analytics/journey?session_id=${upper(a.sessionId)}`)
        .set('authorization', a.bearer)
        .expect(200);
      expect(journey.body.journey.map((e: { page: string }) => e.page)).toContain('/upper-case');

      const revoked = await t
        .http()
        .delete(`/api/sessions/${upper(b.sessionId)}`)
        .set('authorization', a.bearer)
        .expect(200);
      expect(revoked.body).toEqual({ revoked: 1 });
      await t.http().get('/api/session').set('authorization', b.bearer).expect(401);
    });

    it('revokes one session and answers 404 for a session that is not the caller’s', async () => {
      await register(t, 'revoker');
      const a = await login(t, 'revoker');
      const b = await login(t, 'revoker');
      const other = await registerAndLogin(t, 'bystander');
      // Someone else's session and a malformed id: the same 404.
      for (const id of [other.sessionId, 'not-a-uuid']) {
        const res = await t
          .http()
          .delete(`/api/sessions/${id}`)
          .set('authorization', a.bearer)
          .expect(404);
        expect(res.body.message).toBe('No such session');
      }
      await t.http().get('/api/session').set('authorization', other.bearer).expect(200);
      const res = await t
        .http()
        .delete(`/api/sessions/${b.sessionId}`)
        .set('authorization', a.bearer)
        .expect(200);
      expect(res.body).toEqual({ revoked: 1 });
      expect(res.headers['set-cookie']).toBeUndefined(); // not the caller's own session
      await t.http().get('/api/session').set('authorization', b.bearer).expect(401);
      await t.http().get('/api/session').set('authorization', a.bearer).expect(200);
      // Its own session: revoked, and the cookie cleared.
      const own = await t
        .http()
        .delete(`/api/sessions/${a.sessionId}`)
        .set('cookie', a.cookie)
        .expect(200);
      expect(own.body).toEqual({ revoked: 1 });
      expect(([] as string[]).concat(own.headers['set-cookie'])[0]).toMatch(/^session_id=;/);
      await t.http().get('/api/session').set('cookie', a.cookie).expect(401);
    });

    it('answers one of several parallel revocations of a session 200, the others 404', async () => {
      await register(t, 'racer');
      const a = await login(t, 'racer');
      const b = await login(t, 'racer');
      const answers = await Promise.all(
        [1, 2, 3, 4, 5].map(() =>
          t.http().delete(`/api/sessions/${b.sessionId}`).set('authorization', a.bearer),
        ),
      );
      expect(answers.map((res) => res.status).sort()).toEqual([200, 404, 404, 404, 404]);
      expect(answers.find((res) => res.status === 200)?.body).toEqual({ revoked: 1 });
    });

    it('revokes the others, then all', async () => {
      await register(t, 'bulk');
      const a = await login(t, 'bulk');
      const b = await login(t, 'bulk');
      const c = await login(t, 'bulk');
      const others = await t
        .http()
        .delete('/api/sessions?scope=others')
        .set('authorization', c.bearer)
        .expect(200);
      expect(others.body).toEqual({ revoked: 2 });
      expect(others.headers['set-cookie']).toBeUndefined();
      expect(await liveTokens(t, [a.token, b.token, c.token])).toBe(1);
      const all = await t
        .http()
        .delete('/api/sessions?scope=all')
        .set('cookie', c.cookie)
        .expect(200);
      expect(all.body).toEqual({ revoked: 1 });
      expect(([] as string[]).concat(all.headers['set-cookie'])[0]).toMatch(/^session_id=;/);
      expect(await liveTokens(t, [c.token])).toBe(0);
    });

    it('neither counts nor logs an expired session as revoked', async () => {
      await register(t, 'expiring');
      const expired = await login(t, 'expiring');
      const other = await login(t, 'expiring');
      const current = await login(t, 'expiring');
      await t.dataSource.query(
        `UPDATE sessions SET idle_expires_at = ${Date.now() - 1000} WHERE id = '${expired.sessionId}'`,
      );
      const res = await t
        .http()
        .delete('/api/sessions?scope=others')
        .set('authorization', current.bearer)
        .expect(200);
      expect(res.body).toEqual({ revoked: 1 });
      const rows = await t.dataSource.query(
        `SELECT id, revoked_reason FROM sessions WHERE id IN ('${expired.sessionId}', '${other.sessionId}')`,
      );
      expect(
        Object.fromEntries(
          rows.map((r: { id: string; revoked_reason: string | null }) => [r.id, r.revoked_reason]),
        ),
      ).toEqual({ [expired.sessionId]: null, [other.sessionId]: 'user' });
      const [{ n }] = await t.dataSource.query(
        `SELECT COUNT(*) AS n FROM session_events WHERE session_id = '${expired.sessionId}' AND type = 'revoked'`,
      );
      expect(Number(n)).toBe(0);
    });

    it('rejects an unknown or missing scope with 400, revoking nothing', async () => {
      await register(t, 'scoper');
      const sessions = [await login(t, 'scoper'), await login(t, 'scoper')];
      for (const query of ['?scope=everything', '']) {
        const res = await t
          .http()
          .delete(`/api/sessions${query}`)
          .set('authorization', sessions[0].bearer)
          .expect(400);
        expect([query, res.body.details.map((d: { field: string }) => d.field)]).toEqual([
          query,
          ['scope'],
        ]);
        expect(res.headers['set-cookie']).toBeUndefined();
      }
      expect(
        await liveTokens(
          t,
          sessions.map((s) => s.token),
        ),
      ).toBe(2);
    });

    it('keeps at most SESSION_MAX_PER_USER sessions under parallel logins', async () => {
      await register(t, 'crowd');
      const logins = await Promise.all(Array.from({ length: 10 }, () => login(t, 'crowd')));
      expect(
        await liveTokens(
          t,
          logins.map((s) => s.token),
        ),
      ).toBe(3);
      const [{ n }] = await t.dataSource.query(
        `SELECT COUNT(*) AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'crowd' AND s.revoked_reason = 'evicted'`,
      );
      expect(Number(n)).toBe(7);
    });
  });

  describe('CSRF', () => {
    let s: Awaited<ReturnType<typeof registerAndLogin>>;
    beforeAll(async () => {
      s = await registerAndLogin(t, 'csrf');
    });
    const put = () => t.http().put('/api/session/data/k').set('cookie', s.cookie);

    it('refuses a cookie request from a foreign origin, naming the session in the error', async () => {
      const res = await put().set('origin', 'https://evil.example').send({ value: 1 }).expect(403);
      expect(res.body.error).toBe('csrf_rejected');
      expect(res.body.session_id).toBe(s.sessionId);
      for (const origin of ['https://api.local:3001', 'ftp://api.local:3000', 'null']) {
        const other = await put()
          .set('host', 'api.local:3000')
          .set('origin', origin)
          .send({ value: 1 });
        expect([origin, other.status, other.body.error]).toEqual([origin, 403, 'csrf_rejected']);
      }
    });

    it('refuses a cookie request marked Sec-Fetch-Site: cross-site', async () => {
      await put().set('sec-fetch-site', 'cross-site').send({ value: 1 }).expect(403);
    });

    it('accepts same-origin, allowed origins and requests without Origin', async () => {
      await put().send({ value: 1 }).expect(200);
      await put().set('origin', 'https://app.example.com').send({ value: 2 }).expect(200);
      const own = await put()
        .set('host', 'api.local:3000')
        .set('origin', 'http://api.local:3000')
        .send({ value: 3 });
      expect(own.status).toBe(200);
      // Behind a proxy that ends TLS, the service sees http and the browser says https.
      const proxied = await put()
        .set('host', 'api.local:3000')
        .set('origin', 'https://api.local:3000')
        .send({ value: 4 });
      expect(proxied.status).toBe(200);
    });

    it('does not apply to bearer or header tokens', async () => {
      await t
        .http()
        .put('/api/session/data/k')
        .set('authorization', s.bearer)
        .set('origin', 'https://evil.example')
        .send({ value: 4 })
        .expect(200);
    });

    it('does not apply to safe methods', async () => {
      await t
        .http()
        .get('/api/session')
        .set('cookie', s.cookie)
        .set('origin', 'https://evil.example')
        .expect(200);
    });
  });

  describe('admin', () => {
    it('lets only one of two admins demoting each other at once succeed: one admin remains', async () => {
      const first = await registerAndLogin(t, 'admin-one');
      const second = await registerAndLogin(t, 'admin-two');
      await t.dataSource.query(
        `UPDATE users SET role = 'admin' WHERE id IN ('${first.userId}', '${second.userId}')`,
      );
      const users = t.app.get(UsersService);
      const as = (s: { userId: string }, name: string) => ({
        id: s.userId,
        username: name,
        role: 'admin' as const,
      });
      const results = await Promise.allSettled([
        users.update(second.userId, { role: 'user' }, as(first, 'admin-one')),
        users.update(first.userId, { role: 'user' }, as(second, 'admin-two')),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(rejected.reason).toMatchObject({ status: 403 });
      const roles = await t.dataSource.query(
        `SELECT role FROM users WHERE id IN ('${first.userId}', '${second.userId}') ORDER BY role`,
      );
      expect(roles.map((r: { role: string }) => r.role)).toEqual(['admin', 'user']);
    });

    it('disabling a user revokes their sessions at once and blocks login', async () => {
      const admin = await loginAdmin(t);
      const victim = await registerAndLogin(t, 'mallory');
      const res = await t
        .http()
        .patch(`/api/admin/users/${victim.userId}`)
        .set('authorization', admin.bearer)
        .send({ disabled: true })
        .expect(200);
      expect(res.body).toMatchObject({ id: victim.userId, disabled: true });
      await t.http().get('/api/session').set('authorization', victim.bearer).expect(401);
      await t
        .http()
        .post('/auth/login')
        .send({ username: 'mallory', password: PASSWORD })
        .expect(401);
      const [row] = await t.dataSource.query(
        `SELECT revoked_reason FROM sessions WHERE id = '${victim.sessionId}'`,
      );
      expect(row.revoked_reason).toBe('disabled');
      await t
        .http()
        .patch(`/api/admin/users/${victim.userId}`)
        .set('authorization', admin.bearer)
        .send({ disabled: false })
        .expect(200);
      await login(t, 'mallory');
    });

    it('validates PATCH bodies and ids, and protects the admin from themselves', async () => {
      const admin = await loginAdmin(t);
      const patch = (id: string, body: object, status: number) =>
        t
          .http()
          .patch(`/api/admin/users/${id}`)
          .set('authorization', admin.bearer)
          .send(body)
          .expect(status);
      expect((await patch(admin.userId, {}, 400)).body.message).toBe(
        'Nothing to change: send "disabled" and/or "role"',
      );
      expect((await patch(admin.userId, { role: 'root' }, 400)).body.details).toEqual([
        { field: 'role', errors: ['role must be one of the following values: user, admin'] },
      ]);
      // null is not "absent": it would reach NOT NULL columns (once a 500)
      const other = await registerAndLogin(t, 'nulled');
      for (const [field, message] of [
        ['disabled', 'disabled must be a boolean value'],
        ['role', 'role must be one of the following values'],
      ]) {
        const res = await patch(other.userId, { [field]: null }, 400);
        expect(res.body.message).toContain(message);
      }
      await t.http().get('/api/session').set('authorization', other.bearer).expect(200);
      // Neither disabling nor demoting oneself: the last admin could lock everyone out.
      for (const change of [
        { disabled: true },
        { role: 'user' },
        { disabled: false, role: 'user' },
      ]) {
        const res = await patch(admin.userId, change, 409);
        expect([change, res.body.message]).toEqual([
          change,
          'Admins cannot disable or demote themselves',
        ]);
      }
      await t.http().get('/api/admin/users').set('authorization', admin.bearer).expect(200);
      expect(
        (await patch('00000000-0000-4000-8000-000000000000', { disabled: true }, 404)).body.message,
      ).toBe('No such user');
      expect((await patch('xyz', { disabled: true }, 400)).body.message).toBe('id must be a UUID');
    });

    it('promotes a user to admin', async () => {
      const admin = await loginAdmin(t);
      const user = await registerAndLogin(t, 'promoted');
      await t.http().get('/api/admin/users').set('authorization', user.bearer).expect(403);
      await t
        .http()
        .patch(`/api/admin/users/${user.userId}`)
        .set('authorization', admin.bearer)
        .send({ role: 'admin' })
        .expect(200);
      await t.http().get('/api/admin/users').set('authorization', user.bearer).expect(200);
    });

    it('lists users with keyset pagination, without gaps or repeats', async () => {
      const admin = await loginAdmin(t);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t
          .http()
          .get(`/api/admin/users?limit=4${cursor ? `&cursor=${cursor}` : ''}`)
          .set('authorization', admin.bearer)
          .expect(200);
        expect(res.body.items.length).toBeLessThanOrEqual(4);
        seen.push(...res.body.items.map((u: { id: string }) => u.id));
        cursor = res.body.next_cursor;
      } while (cursor);
      const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM users');
      expect(seen.length).toBe(Number(n));
      expect(new Set(seen).size).toBe(seen.length);
      for (const [query, field] of [
        ['cursor=garbage', 'cursor'],
        ['limit=0', 'limit'],
        ['limit=1001', 'limit'],
      ]) {
        const res = await t
          .http()
          .get(`/api/admin/users?${query}`)
          .set('authorization', admin.bearer)
          .expect(400);
        expect([query, res.body.details.map((d: { field: string }) => d.field)]).toEqual([
          query,
          [field],
        ]);
      }
    });

    it('lists and revokes a user’s sessions, and shows the session event log', async () => {
      const admin = await loginAdmin(t);
      await register(t, 'watched');
      const a = await login(t, 'watched');
      const b = await login(t, 'watched');
      const list = await t
        .http()
        .get(`/api/admin/users/${a.userId}/sessions`)
        .set('authorization', admin.bearer)
        .expect(200);
      // Newest first; neither is the admin's own session, so neither is `current`.
      expect(
        list.body.items.map((item: { id: string; user_id: string; current: boolean }) => [
          item.id,
          item.user_id,
          item.current,
        ]),
      ).toEqual([
        [b.sessionId, a.userId, false],
        [a.sessionId, a.userId, false],
      ]);
      const revoked = await t
        .http()
        .delete(`/api/admin/users/${a.userId}/sessions`)
        .set('authorization', admin.bearer)
        .expect(200);
      expect(revoked.body).toEqual({ revoked: 2 });
      await t.http().get('/api/session').set('authorization', a.bearer).expect(401);
      const events = await t
        .http()
        .get(`/api/admin/session-events?user_id=${a.userId}&limit=3`)
        .set('authorization', admin.bearer)
        .expect(200);
      expect(
        events.body.items.map((e: { type: string; reason: string }) => `${e.type}:${e.reason}`),
      ).toEqual(['revoked:admin', 'revoked:admin', 'created:login']);
      expect(events.body.next_cursor).not.toBeNull();
      const rest = await t
        .http()
        .get(`/api/admin/session-events?user_id=${a.userId}&cursor=${events.body.next_cursor}`)
        .set('authorization', admin.bearer)
        .expect(200);
      expect(rest.body.items.map((e: { type: string }) => e.type)).toEqual(['created']);
      expect(rest.body.next_cursor).toBeNull();
    });

    it('keeps admin routes from users (403) and from anonymous callers (401)', async () => {
      const user = await registerAndLogin(t, 'nosy');
      for (const path of [
        '/api/admin/users',
        '/api/admin/session-events',
        `/api/admin/users/${user.userId}/sessions`,
      ]) {
        await t.http().get(path).set('authorization', user.bearer).expect(403);
        await t.http().get(path).expect(401);
      }
    });
  });
});

// The session check keeps rows in memory on SQLite (RowCache). Whatever path writes a
// session, user or session data row (here: plain SQL no service knows about), the next
// check must see it; a rolled-back write must leave no trace.
describe('session check after direct database writes', () => {
  let t: TestApp;
  let database: DatabaseService;
  beforeAll(async () => {
    t = await startTestApp();
    database = t.app.get(DatabaseService);
  });
  afterAll(async () => {
    await t.close();
  });
  const check = (bearer: string) => t.http().get('/api/session').set('authorization', bearer);

  it('keeps checked sessions in memory on SQLite only (other instances write on PostgreSQL)', async () => {
    const service: { authRows?: { size: number } } = t.app.get(SessionService);
    const cached = () => service.authRows?.size;
    const gina = await registerAndLogin(t, 'cache-gina');
    await check(gina.bearer).expect(200);
    if (TEST_DB_TYPE === 'sqlite') expect(cached()).toBeGreaterThan(0);
    else expect(cached()).toBe(0);
  });

  it('neither extends nor rotates a session that expired while its request was in flight', async () => {
    const s = await registerAndLogin(t, 'in-flight');
    const sessions = t.app.get(SessionService);
    const checked = (await sessions.authenticate(s.token, Date.now(), false))!;
    const expiredAt = Date.now() - 1000;
    await database.execute('UPDATE sessions SET idle_expires_at = ? WHERE id = ?', [
      expiredAt,
      s.sessionId,
    ]);
    // The request's activity write (private: normally right after the check) revives nothing.
    const touch = (
      sessions as unknown as { touch: (session: unknown, now: number) => Promise<void> }
    ).touch;
    await touch.call(sessions, { ...checked.session }, Date.now());
    await expect(
      sessions.rotate(checked.session, 'reauth', { ip: null, userAgent: null }),
    ).rejects.toMatchObject({ status: 401 });
    const [row] = await t.dataSource.query(
      `SELECT idle_expires_at, token_hash FROM sessions WHERE id = '${s.sessionId}'`,
    );
    expect([Number(row.idle_expires_at), row.token_hash]).toEqual([
      expiredAt,
      checked.session.tokenHash,
    ]);
    await check(s.bearer).expect(401);
  });

  it('sees a revocation, a disabled user and a role change at once', async () => {
    const alice = await registerAndLogin(t, 'cache-alice');
    await check(alice.bearer).expect(200);
    await check(alice.bearer).expect(200);
    await database.execute('UPDATE sessions SET revoked_at = ? WHERE id = ?', [
      Date.now(),
      alice.sessionId,
    ]);
    await check(alice.bearer).expect(401);

    const bob = await registerAndLogin(t, 'cache-bob');
    await check(bob.bearer).expect(200);
    await database.execute('UPDATE users SET disabled = ? WHERE id = ?', [true, bob.userId]);
    await check(bob.bearer).expect(401);
    await database.execute('UPDATE users SET disabled = ? WHERE id = ?', [false, bob.userId]);
    await check(bob.bearer).expect(200);

    await t.http().get('/api/admin/users').set('authorization', bob.bearer).expect(403);
    await database.execute("UPDATE users SET role = 'admin' WHERE id = ?", [bob.userId]);
    await t.http().get('/api/admin/users').set('authorization', bob.bearer).expect(200);
  });

  it('sees an expiry moved into the past and a deleted session', async () => {
    const carol = await registerAndLogin(t, 'cache-carol');
    await check(carol.bearer).expect(200);
    await database.execute('UPDATE sessions SET idle_expires_at = ? WHERE id = ?', [
      Date.now() - 1,
      carol.sessionId,
    ]);
    await check(carol.bearer).expect(401);

    const dave = await registerAndLogin(t, 'cache-dave');
    await check(dave.bearer).expect(200);
    await database.execute('DELETE FROM sessions WHERE id = ?', [dave.sessionId]);
    await check(dave.bearer).expect(401);
  });

  it('shows session data written, changed and deleted behind its back', async () => {
    const erin = await registerAndLogin(t, 'cache-erin');
    await t
      .http()
      .put('/api/session/data/cart')
      .set('authorization', erin.bearer)
      .send({ value: [1] });
    expect((await check(erin.bearer).expect(200)).body.session.data).toEqual({ cart: [1] });
    await database.execute('UPDATE session_data SET value = ? WHERE session_id = ?', [
      '[1,2]',
      erin.sessionId,
    ]);
    expect((await check(erin.bearer).expect(200)).body.session.data).toEqual({ cart: [1, 2] });
    await database.execute(
      "INSERT INTO session_data (session_id, key, value, size, updated_at) VALUES (?, 'theme', '\"dark\"', 6, ?)",
      [erin.sessionId, Date.now()],
    );
    expect((await check(erin.bearer).expect(200)).body.session.data).toEqual({
      cart: [1, 2],
      theme: 'dark',
    });
    await database.execute('DELETE FROM session_data WHERE session_id = ?', [erin.sessionId]);
    expect((await check(erin.bearer).expect(200)).body.session.data).toEqual({});
  });

  it('forgets what it read inside a transaction that rolled back', async () => {
    const frank = await registerAndLogin(t, 'cache-frank');
    await check(frank.bearer).expect(200);
    await expect(
      database.transaction(async (manager) => {
        await database.executeIn(manager, 'UPDATE sessions SET revoked_at = ? WHERE id = ?', [
          Date.now(),
          frank.sessionId,
        ]);
        // A request checked meanwhile (on SQLite it shares the connection, so it sees the
        // uncommitted revocation): what it read must not outlive the rollback.
        await t.app.get(SessionService).authenticate(frank.token);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await check(frank.bearer).expect(200);
    await check(frank.bearer).expect(200);
  });
});

describe('client address behind proxies (TRUST_PROXY)', () => {
  /** The address the session of a login with this X-Forwarded-For records. */
  async function addressOf(t: TestApp, username: string, forwardedFor: string) {
    const s = await login(t, username, PASSWORD, { headers: { 'x-forwarded-for': forwardedFor } });
    return s.body.session.ip_address as string | null;
  }

  it('believes only as many X-Forwarded-For entries as there are proxies, from the right', async () => {
    for (const [setting, expected] of [
      ['true', '203.0.113.9'],
      ['1', '203.0.113.9'],
      ['2', '198.51.100.4'],
      ['false', '127.0.0.1'],
      // The test client connects from loopback: a trusted proxy address; the entry it added is not.
      ['127.0.0.0/8, ::1', '203.0.113.9'],
    ]) {
      const t = await startTestApp({ TRUST_PROXY: setting });
      try {
        await register(t, 'traveller');
        const address = await addressOf(t, 'traveller', '10.3.0.1, 198.51.100.4, 203.0.113.9');
        expect([setting, address?.replace(/^::ffff:/, '')]).toEqual([setting, expected]);
      } finally {
        await t.close();
      }
    }
  });

  it('throttles logins per proxy-seen address, whatever the client puts in front', async () => {
    const t = await startTestApp({ TRUST_PROXY: 'true', LOGIN_MAX_ATTEMPTS: '2' });
    try {
      await register(t, 'target');
      const attempt = (i: number) =>
        t
          .http()
          .post('/auth/login')
          .set('x-forwarded-for', `10.3.0.${i}, 203.0.113.9`)
          .send({ username: 'target', password: 'wrong password' });
      expect((await attempt(1)).status).toBe(401);
      expect((await attempt(2)).status).toBe(401);
      expect((await attempt(3)).status).toBe(429);
    } finally {
      await t.close();
    }
  });

  it('throttles logins per IPv6 /64, the block one client is usually given', async () => {
    const t = await startTestApp({ TRUST_PROXY: 'true', LOGIN_MAX_ATTEMPTS: '2' });
    try {
      await register(t, 'target');
      const attempt = (ip: string) =>
        t
          .http()
          .post('/auth/login')
          .set('x-forwarded-for', ip)
          .send({ username: 'target', password: 'wrong password' });
      expect((await attempt('2001:db8:1:2::65')).status).toBe(401);
      expect((await attempt('2001:db8:1:2:ffff::66')).status).toBe(401);
      expect((await attempt('2001:db8:1:2:abcd:1:2:3')).status).toBe(429);
      expect((await attempt('2001:db8:1:3::65')).status).toBe(401); // the next /64 counts apart
    } finally {
      await t.close();
    }
  });

  it('stores no address when the trusted entry is not an IP, and drops an IPv6 zone', async () => {
    const t = await startTestApp({ TRUST_PROXY: 'true' });
    try {
      await register(t, 'oddity');
      expect(await addressOf(t, 'oddity', `not-an-ip-${'z'.repeat(60)}`)).toBeNull();
      const zoned = 'fe80::1%a-very-long-interface-name-that-overflows-the-column';
      expect(await addressOf(t, 'oddity', zoned)).toBe('fe80::1');
      const anonymous = await t
        .http()
        .post('/api/session')
        .set('x-forwarded-for', `not-an-ip-${'z'.repeat(60)}`)
        .expect(201);
      expect(anonymous.body.session.ip_address).toBeNull();
    } finally {
      await t.close();
    }
  });
});

describe('login throttling', () => {
  it('answers 429 with Retry-After after too many failures, even for the right password', async () => {
    const t = await startTestApp({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_WINDOW_S: '900' });
    try {
      await register(t, 'target');
      await register(t, 'neighbour');
      for (let i = 0; i < 3; i++) {
        await t
          .http()
          .post('/auth/login')
          .send({ username: 'target', password: 'wrong password' })
          .expect(401);
      }
      const res = await t
        .http()
        .post('/auth/login')
        .send({ username: 'TARGET', password: PASSWORD })
        .expect(429);
      expect(res.body.status_code).toBe(429);
      const retryAfter = Number(res.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(890);
      expect(retryAfter).toBeLessThanOrEqual(900);
      await login(t, 'neighbour');
    } finally {
      await t.close();
    }
  });

  it('answers exactly LOGIN_MAX_ATTEMPTS guesses that arrive at once, and lets parallel right logins in', async () => {
    const t = await startTestApp({ LOGIN_MAX_ATTEMPTS: '4', LOGIN_WINDOW_S: '900' });
    try {
      await register(t, 'swarmed');
      await register(t, 'busy');
      const attempt = (username: string, password: string) =>
        t.http().post('/auth/login').send({ username, password });
      const burst = await Promise.all(
        Array.from({ length: 12 }, (_, i) => attempt('swarmed', `wrong guess ${i}`)),
      );
      const statuses = burst.map((r) => r.status).sort();
      expect(statuses).toEqual([...Array(4).fill(401), ...Array(8).fill(429)]);
      // The refusals were not counted as failures: exactly the 4 answered guesses are.
      const [row] = await t.dataSource.query('SELECT COUNT(*) AS n FROM login_failures');
      expect(Number(row.n)).toBe(4);
      await attempt('swarmed', PASSWORD).expect(429);
      // Attempts in flight count as failures only until they succeed: more parallel logins
      // with the right password than the limit all get in.
      const logins = await Promise.all(Array.from({ length: 8 }, () => attempt('busy', PASSWORD)));
      expect(logins.map((r) => r.status)).toEqual(Array(8).fill(200));
    } finally {
      await t.close();
    }
  });

  it('throttles password checks of signed-in users too (reauth, password change), sharing the count', async () => {
    const t = await startTestApp({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_WINDOW_S: '900' });
    try {
      await register(t, 'stolen');
      const s = await login(t, 'stolen');
      const post = (path: string, body: object) =>
        t.http().post(path).set('authorization', s.bearer).send(body);
      await post('/auth/reauth', { password: 'guess one' }).expect(401);
      await post('/auth/password', {
        current_password: 'guess two',
        new_password: 'an entirely new password',
      }).expect(401);
      await t
        .http()
        .post('/auth/login')
        .send({ username: 'stolen', password: 'guess three' })
        .expect(401);
      // The limit is reached: even the right password is refused, on every path.
      const reauth = await post('/auth/reauth', { password: PASSWORD }).expect(429);
      expect(Number(reauth.headers['retry-after'])).toBeGreaterThan(890);
      await post('/auth/password', {
        current_password: PASSWORD,
        new_password: 'an entirely new password',
      }).expect(429);
      // The session itself still works, and its password did not change.
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
    } finally {
      await t.close();
    }
  });

  it('lets the user in again once failures leave the window', async () => {
    const t = await startTestApp({ LOGIN_MAX_ATTEMPTS: '2', LOGIN_WINDOW_S: '1' });
    try {
      await register(t, 'patient');
      for (let i = 0; i < 2; i++) {
        await t
          .http()
          .post('/auth/login')
          .send({ username: 'patient', password: 'wrong password' })
          .expect(401);
      }
      await t
        .http()
        .post('/auth/login')
        .send({ username: 'patient', password: PASSWORD })
        .expect(429);
      await sleep(1100);
      await login(t, 'patient');
    } finally {
      await t.close();
    }
  });
});

describe('bootstrap admin', () => {
  // A fresh app and database per test: each starts from its own start-up.
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp(ADMIN_ENV);
  });
  afterEach(async () => {
    await t.close();
  });

  it('is created from ADMIN_USERNAME / ADMIN_PASSWORD and has the admin role', async () => {
    const admin = await loginAdmin(t);
    expect(admin.body.role).toBe('admin');
  });

  it('starts when another instance created the bootstrap admin at the same moment', async () => {
    const users = t.app.get(UsersService);
    // This instance looked before the other's insert committed: its own insert conflicts.
    const spy = jest.spyOn(users, 'findByUsername').mockResolvedValueOnce(null);
    await expect(users.onApplicationBootstrap()).resolves.toBeUndefined();
    spy.mockRestore();
    const [{ n }] = await t.dataSource.query(
      `SELECT COUNT(*) AS n FROM users WHERE username = '${ADMIN_ENV.ADMIN_USERNAME}'`,
    );
    expect(Number(n)).toBe(1);
    expect((await loginAdmin(t)).body.role).toBe('admin');
  });

  it('is an enabled admin again at start-up when no enabled admin is left, and only then', async () => {
    const users = t.app.get(UsersService);
    const roleOf = async (username: string) =>
      (await users.findByUsername(username))!.role as string;
    // Another enabled admin exists: the demoted bootstrap account stays demoted.
    const other = await register(t, 'other-admin');
    await t.dataSource.query(`UPDATE users SET role = 'admin' WHERE id = '${other.id}'`);
    await t.dataSource.query(
      `UPDATE users SET role = 'user' WHERE username = '${ADMIN_ENV.ADMIN_USERNAME}'`,
    );
    await users.onApplicationBootstrap();
    expect(await roleOf(ADMIN_ENV.ADMIN_USERNAME)).toBe('user');
    // That admin gone (here: erased), the next start makes it an admin again.
    await t.app.get(ErasureService).erase(other.id, 'self', {
      actorType: 'user',
      actorUserId: other.id,
      requestId: 'test',
    });
    await users.onApplicationBootstrap();
    expect(await roleOf(ADMIN_ENV.ADMIN_USERNAME)).toBe('admin');
    expect((await loginAdmin(t)).body.role).toBe('admin');
  });

  it('does not promote an account of that name whose password is not ADMIN_PASSWORD', async () => {
    const users = t.app.get(UsersService);
    // As if someone had registered the name first (open registration), with a password of theirs,
    // and no enabled admin were left.
    const theirs = await users.hashPassword('registrant-password');
    await t.dataSource.query(
      `UPDATE users SET role = 'user', password_hash = '${theirs}' WHERE username = '${ADMIN_ENV.ADMIN_USERNAME}'`,
    );
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      await users.onApplicationBootstrap();
      expect(errors).toHaveBeenCalledWith(
        expect.stringContaining(
          `"${ADMIN_ENV.ADMIN_USERNAME}" is an account whose password is not ADMIN_PASSWORD`,
        ),
      );
    } finally {
      errors.mockRestore();
    }
    expect((await users.findByUsername(ADMIN_ENV.ADMIN_USERNAME))!.role).toBe('user');
    const registrant = await login(t, ADMIN_ENV.ADMIN_USERNAME, 'registrant-password');
    expect(registrant.body.role).toBe('user');
  });
});
