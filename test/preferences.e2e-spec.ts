import { EventWriter } from '../src/modules/tracking/event-writer';
import { LoggedIn, registerAndLogin } from './support/auth';
import { startTestApp, TestApp } from './support/test-app';

const DEFAULTS = {
  theme: 'light',
  language: 'en',
  timezone: 'UTC',
  notifications: { email: true, push: false, sms: false },
  privacy: { profile_public: false, show_activity: true, allow_analytics: true },
};

describe('preferences', () => {
  let t: TestApp;
  let s: LoggedIn;
  const http = () => ({
    get: (path: string) => t.http().get(path).set('authorization', s.bearer),
    put: (path: string) => t.http().put(path).set('authorization', s.bearer),
    patch: (path: string) => t.http().patch(path).set('authorization', s.bearer),
    post: (path: string) => t.http().post(path).set('authorization', s.bearer),
    delete: (path: string) => t.http().delete(path).set('authorization', s.bearer),
  });

  beforeAll(async () => {
    t = await startTestApp();
  });
  beforeEach(async () => {
    s = await registerAndLogin(t, `prefs-${Math.random().toString(36).slice(2, 10)}`);
  });
  afterAll(async () => {
    await t.close();
  });

  it('starts from the defaults', async () => {
    expect((await http().get('/api/preferences').expect(200)).body).toEqual(DEFAULTS);
    expect((await http().get('/api/preferences/defaults').expect(200)).body).toEqual(DEFAULTS);
  });

  it('merges partial updates: untouched settings keep their values (PUT and PATCH)', async () => {
    await http()
      .put('/api/preferences')
      .send({ theme: 'dark', notifications: { sms: true } })
      .expect(200);
    const res = await http().patch('/api/preferences').send({ language: 'de' }).expect(200);
    expect(res.body).toEqual({
      ...DEFAULTS,
      theme: 'dark',
      language: 'de',
      notifications: { email: true, push: false, sms: true },
    });
    expect((await http().get('/api/preferences').expect(200)).body).toEqual(res.body);
  });

  it.each([
    ['an unknown key', { colour: 'red' }, 'colour'],
    ['an unknown nested key', { notifications: { fax: true } }, 'notifications.fax'],
    ['a wrong type', { notifications: { email: 'yes' } }, 'notifications.email'],
    ['a value outside the enum', { theme: 'neon' }, 'theme'],
    ['an unsupported language', { language: 'xx' }, 'language'],
    ['a bad time zone', { timezone: 'Mars/Base' }, 'timezone'],
    ['a group that is not an object', { privacy: true }, 'privacy'],
  ])('rejects %s with 400 naming the key and stores nothing', async (_label, body, field) => {
    const res = await http()
      .put('/api/preferences')
      .send({ theme: 'dark', ...body })
      .expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field)).toEqual([field]);
    expect(res.body.message).toContain(field);
    expect((await http().get('/api/preferences').expect(200)).body.theme).toBe('light');
  });

  it('takes a time zone only as it is named, and aliases as given', async () => {
    for (const [zone, named] of [
      ['Europe/berlin', 'Europe/Berlin'],
      ['utc', 'UTC'],
    ]) {
      const res = await http().put('/api/preferences/timezone').send({ value: zone }).expect(400);
      expect(res.body.message).toContain(`must be written as the zone is named: "${named}"`);
    }
    expect((await http().get('/api/preferences').expect(200)).body.timezone).toBe('UTC');
    for (const zone of ['Asia/Kolkata', 'US/Pacific', 'Etc/UTC']) {
      await http().put('/api/preferences/timezone').send({ value: zone }).expect(200);
      expect((await http().get('/api/preferences').expect(200)).body.timezone).toBe(zone);
    }
    await http().delete('/api/preferences/timezone').expect(200);
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'treats %s (an Object.prototype name) as an unknown preference: 400, nothing changed',
    async (key) => {
      const set = await http().put(`/api/preferences/${key}`).send({ value: 1 }).expect(400);
      expect(set.body.message).toBe(`Unknown preference "${key}"`);
      const patch = await http()
        .patch('/api/preferences')
        .send(`{"${key}": 1, "theme": "dark"}`)
        .set('content-type', 'application/json')
        .expect(400);
      // A __proto__ key never gets past Fastify's JSON parser (prototype poisoning guard).
      expect(patch.body.message).toContain(key === '__proto__' ? 'forbidden key: __proto__' : key);
      const reset = await http().delete(`/api/preferences/${key}`).expect(400);
      expect(reset.body.message).toBe(`Unknown preference "${key}"`);
      expect((await http().get('/api/preferences').expect(200)).body).toEqual(DEFAULTS);
    },
  );

  it.each([
    'notifications.email.foo',
    'privacy.allow_analytics.x',
    'notifications.email.',
    'theme.x',
  ])('refuses %s (a known key with more segments) with 400, nothing changed', async (key) => {
    const value = key.startsWith('theme') ? 'dark' : false;
    const set = await http().put(`/api/preferences/${key}`).send({ value }).expect(400);
    expect(set.body.message).toBe(`Unknown preference "${key}"`);
    expect((await http().get('/api/preferences').expect(200)).body).toEqual(DEFAULTS);
  });

  it('rejects a body that is not an object, and an empty one', async () => {
    const list = await http().put('/api/preferences').send([1]).expect(400);
    expect(list.body.message).toBe('The body must be a JSON object of preferences');
    const empty = await http().put('/api/preferences').send({}).expect(400);
    expect(empty.body.message).toBe('No preference to change');
    expect((await http().get('/api/preferences').expect(200)).body).toEqual(DEFAULTS);
  });

  it('sets one key, dotted keys included, and resets one or all', async () => {
    await http().put('/api/preferences/notifications.email').send({ value: false }).expect(200);
    await http().put('/api/preferences/theme').send({ value: 'system' }).expect(200);
    await http()
      .put('/api/preferences/privacy')
      .send({ value: { profile_public: true } })
      .expect(200);
    let doc = (await http().get('/api/preferences').expect(200)).body;
    expect(doc.notifications.email).toBe(false);
    expect(doc.theme).toBe('system');
    expect(doc.privacy.profile_public).toBe(true);
    // One key's body is {"value": ...} and nothing else.
    for (const body of [{ other: 1 }, { value: 'dark', other: 1 }]) {
      const res = await http().put('/api/preferences/theme').send(body).expect(400);
      expect([body, res.body.message, res.body.details]).toEqual([
        body,
        'The body must be {"value": <the new value>}',
        [{ field: 'value', errors: ['value is required, and the only field'] }],
      ]);
    }
    const badValue = await http()
      .put('/api/preferences/notifications.email')
      .send({ value: 'no' })
      .expect(400);
    expect(badValue.body.details.map((d: { field: string }) => d.field)).toEqual([
      'notifications.email',
    ]);
    await http().delete('/api/preferences/notifications.email').expect(200);
    const unknown = await http().delete('/api/preferences/nope').expect(400);
    expect(unknown.body.message).toBe('Unknown preference "nope"');
    doc = (await http().get('/api/preferences').expect(200)).body;
    expect(doc.notifications.email).toBe(true);
    expect(doc.theme).toBe('system');
    const reset = await http().post('/api/preferences/reset').expect(200);
    expect(reset.body).toEqual(DEFAULTS);
  });

  it('keeps concurrent updates of different keys', async () => {
    await Promise.all([
      http().patch('/api/preferences').send({ theme: 'dark' }),
      http().patch('/api/preferences').send({ language: 'fr' }),
      http()
        .patch('/api/preferences')
        .send({ notifications: { push: true } }),
      http()
        .patch('/api/preferences')
        .send({ privacy: { show_activity: false } }),
      http().patch('/api/preferences').send({ timezone: 'Asia/Tokyo' }),
    ]);
    expect((await http().get('/api/preferences').expect(200)).body).toEqual({
      theme: 'dark',
      language: 'fr',
      timezone: 'Asia/Tokyo',
      notifications: { email: true, push: true, sms: false },
      privacy: { profile_public: false, show_activity: false, allow_analytics: true },
    });
  });

  it('stops analytics storage from the next request on when allow_analytics is false', async () => {
    await http().put('/api/preferences/privacy.allow_analytics').send({ value: false }).expect(200);
    const res = await http().post('/api/track/page').send({ page: '/private' }).expect(200);
    expect(res.body).toMatchObject({ stored: false, event_id: null });
    await http().get('/api/sessions').expect(200); // an automatic event, not stored either
    await t.app.get(EventWriter).drain();
    const [{ n }] = await t.dataSource.query(
      `SELECT COUNT(*) AS n FROM events WHERE user_id = '${s.userId}' AND type <> 'login'`,
    );
    expect(Number(n)).toBe(0);
    await http().put('/api/preferences/privacy.allow_analytics').send({ value: true }).expect(200);
    const again = await http().post('/api/track/page').send({ page: '/public' }).expect(200);
    expect(again.body.stored).toBe(true);
  });

  it('needs a signed-in user', async () => {
    await t.http().get('/api/preferences').expect(401);
  });
});

describe('preferences when SUPPORTED_LANGUAGES leaves out en', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ SUPPORTED_LANGUAGES: 'de,fr' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('defaults to the first supported language and reads a dropped one as the default', async () => {
    const s = await registerAndLogin(t, 'polyglot');
    const defaults = await t
      .http()
      .get('/api/preferences/defaults')
      .set('authorization', s.bearer)
      .expect(200);
    expect(defaults.body).toEqual({ ...DEFAULTS, language: 'de' });
    // Stored while ja was still supported.
    await t.dataSource.query(
      `INSERT INTO user_preferences (user_id, key, value, updated_at) VALUES ('${s.userId}', 'language', '"ja"', 0)`,
    );
    const effective = await t
      .http()
      .get('/api/preferences')
      .set('authorization', s.bearer)
      .expect(200);
    expect(effective.body.language).toBe('de');
    // What the API shows can be sent back as it is.
    await t
      .http()
      .put('/api/preferences')
      .set('authorization', s.bearer)
      .send(effective.body)
      .expect(200);
  });
});
