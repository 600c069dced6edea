import { login, PASSWORD, register, registerAndLogin, sleep } from './support/auth';
import { startTestApp, TestApp } from './support/test-app';
import { AppConfig } from '../src/common/config/config';
import { PasswordHasher } from '../src/modules/users/password-hasher';

const UNAUTHORIZED = 'Authentication required: no valid session';

describe('accounts and login', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('POST /auth/register', () => {
    it('creates a user and returns it without any secret', async () => {
      const res = await t
        .http()
        .post('/auth/register')
        .send({ username: 'Alice', password: PASSWORD, email: 'alice@example.com' })
        .expect(201);
      expect(res.body.user).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        username: 'Alice',
        email: 'alice@example.com',
        role: 'user',
        disabled: false,
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      });
      expect(JSON.stringify(res.body)).not.toContain(PASSWORD);
      const [row] = await t.dataSource.query(
        "SELECT password_hash FROM users WHERE username = 'Alice'",
      );
      expect(row.password_hash).toMatch(/^scrypt\$10\$8\$1\$/);
      expect(row.password_hash).not.toContain(PASSWORD);
    });

    it('rejects a username taken in another case with 409', async () => {
      const res = await t
        .http()
        .post('/auth/register')
        .send({ username: 'ALICE', password: PASSWORD })
        .expect(409);
      expect(res.body.message).toBe('That username is taken');
    });

    it.each([
      [{ username: 'ab', password: PASSWORD }, 'username'],
      [{ username: 'has space', password: PASSWORD }, 'username'],
      [{ username: 'bob', password: 'short' }, 'password'],
      [{ username: 'bob', password: 'x'.repeat(257) }, 'password'],
      [{ username: 'bob', password: PASSWORD, email: 'not-an-email' }, 'email'],
      [{ username: 'bob', password: PASSWORD, role: 'admin' }, 'role'],
      [{ password: PASSWORD }, 'username'],
    ])('rejects %j with 400 naming %s, creating nothing', async (body, field) => {
      const res = await t.http().post('/auth/register').send(body).expect(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      const [{ n }] = await t.dataSource.query(
        "SELECT COUNT(*) AS n FROM users WHERE username_lower = 'bob'",
      );
      expect(Number(n)).toBe(0);
    });
  });

  describe('POST /auth/login', () => {
    beforeAll(async () => {
      await register(t, 'carol');
    });

    it('returns the seed fields, the token and a session cookie with safe flags', async () => {
      const res = await t
        .http()
        .post('/auth/login')
        .set(
          'user-agent',
          'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36',
        )
        .send({ username: 'CAROL', password: PASSWORD })
        .expect(200);
      expect(res.body).toMatchObject({
        status: 'success',
        message: 'Login successful',
        username: 'carol',
        role: 'user',
      });
      expect(res.body.session_id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(res.body.session).toMatchObject({
        user_id: res.body.user_id,
        anonymous: false,
        remember_me: false,
        device: { browser: 'Chrome 118', os: 'Linux', type: 'desktop' },
      });
      expect(res.body.session.id).not.toBe(res.body.session_id);
      const cookie = ([] as string[]).concat(res.headers['set-cookie'])[0];
      expect(cookie).toMatch(new RegExp(`^session_id=${res.body.session_id};`));
      expect(cookie).toContain('HttpOnly');
      expect(cookie).toContain('SameSite=Lax');
      expect(cookie).toContain('Path=/');
      expect(cookie).not.toContain('Secure');
      expect(cookie).not.toContain('Max-Age');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('gives a persistent cookie and longer lifetimes with remember_me', async () => {
      const session = await login(t, 'carol', PASSWORD, { remember_me: true });
      expect(session.setCookie).toMatch(/Max-Age=259\d{4}/);
      expect(session.body.session.remember_me).toBe(true);
      const created = Date.parse(session.body.session.created_at);
      expect(Date.parse(session.body.session.absolute_expires_at) - created).toBe(2_592_000_000);
      expect(Date.parse(session.body.session.idle_expires_at) - created).toBe(604_800_000);
    });

    it('answers an unknown user and a wrong password with the same 401', async () => {
      const unknown = await t
        .http()
        .post('/auth/login')
        .send({ username: 'nobody', password: PASSWORD })
        .expect(401);
      const wrong = await t
        .http()
        .post('/auth/login')
        .send({ username: 'carol', password: 'wrong password' })
        .expect(401);
      const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined });
      expect(strip(unknown.body)).toEqual(strip(wrong.body));
      expect(unknown.body.message).toBe('Invalid username or password');
      expect(unknown.headers['set-cookie']).toBeUndefined();
      expect(unknown.headers['cache-control']).toBe('no-store');
    });

    describe('a password hash from another PASSWORD_HASH_COST', () => {
      // The test apps hash at cost 10; this hash is at cost 11, as before a change of the setting.
      const olderCost = new PasswordHasher({ users: { passwordHashCost: 11 } } as AppConfig);
      const storedHash = async (username: string): Promise<string> =>
        (
          await t.dataSource.query(`SELECT password_hash FROM users WHERE username = '${username}'`)
        )[0].password_hash;
      const setHash = (username: string, hash: string) =>
        t.dataSource.query(
          `UPDATE users SET password_hash = '${hash}' WHERE username = '${username}'`,
        );

      it('is replaced at the current cost by the next login', async () => {
        await register(t, 'olga');
        await setHash('olga', await olderCost.hash(PASSWORD));
        await login(t, 'olga');
        expect(await storedHash('olga')).toMatch(/^scrypt\$10\$8\$1\$/);
        await login(t, 'olga');
      });

      it('is not written over a password changed while the login checked the old one', async () => {
        await register(t, 'oscar');
        await setHash('oscar', await olderCost.hash(PASSWORD));
        const hasher = t.app.get(PasswordHasher);
        const changed = await hasher.hash('a brand new password');
        const hash = hasher.hash.bind(hasher);
        // The change commits after the login verified the old password, before its rehash is stored.
        const spy = jest.spyOn(hasher, 'hash').mockImplementationOnce(async (password: string) => {
          await setHash('oscar', changed);
          return hash(password);
        });
        try {
          const res = await t
            .http()
            .post('/auth/login')
            .send({ username: 'oscar', password: PASSWORD })
            .expect(401);
          expect(res.body.message).toBe('Invalid username or password');
        } finally {
          spy.mockRestore();
        }
        expect(await storedHash('oscar')).toBe(changed);
        await login(t, 'oscar', 'a brand new password');
      });

      it('checks a wrong password as an unknown username costs (see the PasswordHasher spec)', async () => {
        await register(t, 'otto');
        const hash = await olderCost.hash(PASSWORD);
        await setHash('otto', hash);
        const hasher = t.app.get(PasswordHasher);
        const checked = jest.spyOn(hasher, 'verifyAtCurrentCost');
        const dummy = jest.spyOn(hasher, 'verifyDummy');
        try {
          await t
            .http()
            .post('/auth/login')
            .send({ username: 'otto', password: 'wrong one' })
            .expect(401);
          // The check that pads a cheaper hash's work up to the current cost's.
          expect(checked).toHaveBeenCalledWith('wrong one', hash);
          expect(dummy).not.toHaveBeenCalled();
          await t
            .http()
            .post('/auth/login')
            .send({ username: 'no-such-otto', password: 'wrong one' })
            .expect(401);
          expect(dummy).toHaveBeenCalledWith('wrong one');
          expect(checked).toHaveBeenCalledTimes(1);
        } finally {
          checked.mockRestore();
          dummy.mockRestore();
        }
      });
    });

    it('rejects missing fields with 400', async () => {
      const res = await t.http().post('/auth/login').send({ username: 'carol' }).expect(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toEqual(['password']);
    });

    it('rejects a disabled registration with 403', async () => {
      const closed = await startTestApp({ REGISTRATION_OPEN: 'false' });
      try {
        const res = await closed
          .http()
          .post('/auth/register')
          .send({ username: 'dave', password: PASSWORD })
          .expect(403);
        expect(res.body.error).toBe('registration_closed');
      } finally {
        await closed.close();
      }
    });
  });

  describe('token transports', () => {
    let token: string;
    beforeAll(async () => {
      token = (await registerAndLogin(t, 'erin')).token;
    });

    it('accepts the cookie, a bearer token and X-Session-ID', async () => {
      for (const [name, value] of [
        ['cookie', `session_id=${token}`],
        ['authorization', `Bearer ${token}`],
        ['x-session-id', token],
      ]) {
        const res = await t.http().get('/api/me').set(name, value).expect(200);
        expect(res.body.user.username).toBe('erin');
      }
    });

    it('ignores a token in the query string', async () => {
      const res = await t.http().get(`/api/me?session_id=${token}`).expect(401);
      expect(res.body.message).toBe(UNAUTHORIZED);
    });

    it('answers missing and unknown tokens with the same 401', async () => {
      const missing = await t.http().get('/api/me').expect(401);
      const unknown = await t
        .http()
        .get('/api/me')
        .set('authorization', `Bearer ${'A'.repeat(43)}`)
        .expect(401);
      const garbage = await t.http().get('/api/me').set('x-session-id', '../../etc').expect(401);
      for (const res of [missing, unknown, garbage]) {
        expect(res.body.message).toBe(UNAUTHORIZED);
        expect(res.body.session_id).toBeNull();
      }
    });

    it('puts the public session id, never the token, in error bodies', async () => {
      const me = await t.http().get('/api/me').set('x-session-id', token).expect(200);
      const res = await t.http().get('/api/admin/users').set('x-session-id', token).expect(403);
      const [session] = await t.dataSource.query(
        'SELECT id FROM sessions WHERE user_id = ?'.replace('?', `'${me.body.user.id}'`),
      );
      expect(res.body.session_id).toBe(session.id);
      expect(JSON.stringify(res.body)).not.toContain(token);
    });
  });

  describe('POST /auth/logout', () => {
    it('revokes the session, clears the cookie and sends Clear-Site-Data', async () => {
      const s = await registerAndLogin(t, 'frank');
      const res = await t.http().post('/auth/logout').set('cookie', s.cookie).expect(200);
      expect(res.body).toEqual({ status: 'success', message: 'Logout successful' });
      expect(res.headers['clear-site-data']).toBe('"cookies"');
      const cleared = ([] as string[]).concat(res.headers['set-cookie'])[0];
      expect(cleared).toMatch(/^session_id=;/);
      expect(cleared).toMatch(/Expires=Thu, 01 Jan 1970/);
      await t.http().get('/api/session').set('cookie', s.cookie).expect(401);
      const [row] = await t.dataSource.query(
        `SELECT revoked_reason FROM sessions WHERE id = '${s.sessionId}'`,
      );
      expect(row.revoked_reason).toBe('logout');
    });

    it('needs a session', async () => {
      const res = await t.http().post('/auth/logout').expect(401);
      expect(res.body.message).toBe('Authentication required: no valid session');
    });

    it('ends an anonymous session too', async () => {
      const anonymous = await t.http().post('/api/session').expect(201);
      const token = anonymous.body.session_id as string;
      const res = await t
        .http()
        .post('/auth/logout')
        .set('authorization', `Bearer ${token}`)
        .expect(200);
      expect(res.body).toEqual({ status: 'success', message: 'Logout successful' });
      await t.http().get('/api/session').set('authorization', `Bearer ${token}`).expect(401);
      const [row] = await t.dataSource.query(
        `SELECT revoked_reason, user_id FROM sessions WHERE id = '${anonymous.body.session.id}'`,
      );
      expect(row).toEqual({ revoked_reason: 'logout', user_id: null });
    });

    it('cannot be undone by a request that was in flight', async () => {
      const s = await registerAndLogin(t, 'grace');
      await Promise.all([
        t.http().post('/auth/logout').set('authorization', s.bearer),
        t.http().put('/api/session/data/cart').set('authorization', s.bearer).send({ value: 1 }),
        t.http().get('/api/session').set('authorization', s.bearer),
      ]);
      await t.http().get('/api/session').set('authorization', s.bearer).expect(401);
      const [row] = await t.dataSource.query(
        `SELECT revoked_at FROM sessions WHERE id = '${s.sessionId}'`,
      );
      expect(row.revoked_at).not.toBeNull();
    });
  });

  describe('GET /api/me', () => {
    it('returns the caller profile', async () => {
      const s = await registerAndLogin(t, 'heidi');
      const res = await t.http().get('/api/me').set('authorization', s.bearer).expect(200);
      expect(res.body.user).toMatchObject({
        id: s.userId,
        username: 'heidi',
        role: 'user',
        disabled: false,
      });
    });

    it('keeps every API answer out of caches, the public pages not', async () => {
      const s = await registerAndLogin(t, 'cache-averse');
      for (const path of ['/api/me', '/api/gdpr/export', '/api/preferences']) {
        const res = await t.http().get(path).set('authorization', s.bearer).expect(200);
        expect([path, res.headers['cache-control']]).toEqual([path, 'no-store']);
      }
      // An anonymous visitor's first page view answers with their new session token.
      const anonymous = await t.http().post('/api/track/page').send({ page: '/' }).expect(200);
      expect(anonymous.body.session_id).toEqual(expect.any(String));
      expect(anonymous.headers['cache-control']).toBe('no-store');
      expect((await t.http().get('/health').expect(200)).headers['cache-control']).toBeUndefined();
    });
  });

  describe('token storage', () => {
    it('stores neither a token nor anything containing it, only its SHA-256', async () => {
      const s = await registerAndLogin(t, 'ivan');
      const { createHash } = await import('node:crypto');
      const hash = createHash('sha256').update(s.token).digest('hex');
      const tables: string[] =
        t.dataSource.options.type === 'postgres'
          ? (
              await t.dataSource.query(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
              )
            ).map((r: { name: string }) => r.name)
          : (await t.dataSource.query("SELECT name FROM sqlite_master WHERE type = 'table'")).map(
              (r: { name: string }) => r.name,
            );
      let hashSeen = 0;
      for (const table of tables) {
        const rows = await t.dataSource.query(`SELECT * FROM "${table}"`);
        const dump = JSON.stringify(rows);
        expect(dump).not.toContain(s.token);
        if (dump.includes(hash)) hashSeen++;
      }
      expect(hashSeen).toBe(1); // sessions.token_hash only
    });

    it('never returns the token or its hash from session reads', async () => {
      const s = await registerAndLogin(t, 'judy');
      const { createHash } = await import('node:crypto');
      const hash = createHash('sha256').update(s.token).digest('hex');
      for (const path of ['/api/session', '/api/sessions', '/api/session/data', '/api/me']) {
        const res = await t.http().get(path).set('authorization', s.bearer).expect(200);
        expect(res.text).not.toContain(s.token);
        expect(res.text).not.toContain(hash);
      }
    });
  });
});

describe('session expiry', () => {
  it('ends a session after the idle timeout even though the absolute lifetime remains', async () => {
    const t = await startTestApp({
      SESSION_IDLE_TIMEOUT_S: '1',
      SESSION_ABSOLUTE_TIMEOUT_S: '3600',
      SESSION_TOUCH_INTERVAL_S: '0',
    });
    try {
      const s = await registerAndLogin(t, 'idle');
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      await sleep(1200);
      const res = await t.http().get('/api/session').set('authorization', s.bearer).expect(401);
      expect(res.body.message).toBe(UNAUTHORIZED);
    } finally {
      await t.close();
    }
  });

  it('ends an active session at the absolute lifetime even though it is never idle', async () => {
    const t = await startTestApp({
      SESSION_IDLE_TIMEOUT_S: '3600',
      SESSION_ABSOLUTE_TIMEOUT_S: '2',
      SESSION_TOUCH_INTERVAL_S: '0',
    });
    try {
      const s = await registerAndLogin(t, 'busy');
      const started = Date.now();
      while (Date.now() - started < 1500) {
        await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
        await sleep(250);
      }
      await sleep(Math.max(0, 2100 - (Date.now() - started)));
      await t.http().get('/api/session').set('authorization', s.bearer).expect(401);
    } finally {
      await t.close();
    }
  });

  it('writes last_seen_at at most once per touch interval', async () => {
    const t = await startTestApp({ SESSION_TOUCH_INTERVAL_S: '60' });
    try {
      const s = await registerAndLogin(t, 'quiet');
      const read = async () =>
        (
          await t.dataSource.query(
            `SELECT last_seen_at, idle_expires_at FROM sessions WHERE id = '${s.sessionId}'`,
          )
        )[0];
      const before = await read();
      await sleep(20);
      for (let i = 0; i < 5; i++)
        await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      expect(await read()).toEqual(before);
    } finally {
      await t.close();
    }
  });

  it('writes last_seen_at on every request with a touch interval of 0', async () => {
    const t = await startTestApp({ SESSION_TOUCH_INTERVAL_S: '0' });
    try {
      const s = await registerAndLogin(t, 'chatty');
      const read = async () =>
        Number(
          (
            await t.dataSource.query(
              `SELECT last_seen_at FROM sessions WHERE id = '${s.sessionId}'`,
            )
          )[0].last_seen_at,
        );
      const before = await read();
      await sleep(20);
      const res = await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      const after = await read();
      expect(after).toBeGreaterThan(before);
      expect(Date.parse(res.body.session.last_activity)).toBe(after);
    } finally {
      await t.close();
    }
  });
});
