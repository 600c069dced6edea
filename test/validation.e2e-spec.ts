import { routeKey, routeRules } from '../src/common/http/route-rules';
import { ADMIN_ENV, LoggedIn, loginAdmin, registerAndLogin } from './support/auth';
import { databaseSnapshot } from './support/snapshot';
import { startTestApp, TestApp } from './support/test-app';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

const FORMAT_MESSAGE = 'Validation failed: format must be one of the following values: json, csv';
const BAD_CURSOR = 'cursor is not a cursor returned by this list';
const NOT_A_UUID = 'id must be a UUID';
const UNKNOWN_USER = '00000000-0000-4000-8000-000000000000';
const SESSION_DATA_KEY = 'key must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"';

/**
 * Bad input on routes whose other tests cover the success paths: each gets
 * a 400 (or 404) with a message that names the problem, and changes nothing
 * in any table. `who` is the caller: a signed-in user or the admin.
 */
/** The cases' columns; `field`: the one field a 400's `details` names (none: the body as a whole). */
type Case = [
  name: string,
  method: Method,
  url: string,
  body: object | null,
  who: 'user' | 'admin',
  status: number,
  message: string,
  field?: string,
];

const CASES: Case[] = [
  // Matchers must be objects: an array passed as a matcher that matched nothing (a 200 of zeros).
  [
    'funnel: steps that are arrays',
    'post',
    '/api/analytics/funnel',
    { steps: [[], [{ type: 'login' }]] },
    'admin',
    400,
    'Validation failed: each value in steps must be an object',
    'steps',
  ],
  [
    'retention: a start matcher that is an array',
    'post',
    '/api/analytics/retention',
    { period: 'day', start: [{ type: 'login' }] },
    'admin',
    400,
    'Validation failed: start must be an object',
    'start',
  ],
  [
    'retention: a return matcher that is an array',
    'post',
    '/api/analytics/retention',
    { period: 'day', return: [] },
    'admin',
    400,
    'Validation failed: return must be an object',
    'return',
  ],
  // Journeys and reports
  [
    'journey: session_id not a UUID',
    'get',
    '/api/analytics/journey?session_id=nope',
    null,
    'user',
    400,
    'Validation failed: session_id must be a UUID',
    'session_id',
  ],
  [
    'journey: forged cursor',
    'get',
    '/api/analytics/journey?cursor=%5B1e400%2C1%5D',
    null,
    'user',
    400,
    BAD_CURSOR,
    'cursor',
  ],
  [
    'journey: from after to',
    'get',
    '/api/analytics/journey?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z',
    null,
    'user',
    400,
    'from must be before to',
    'from',
  ],
  [
    'user summary: an unknown parameter',
    'get',
    '/api/analytics/user?days=7',
    null,
    'user',
    400,
    'Validation failed: property days should not exist',
    'days',
  ],
  [
    'realtime: an unknown parameter',
    'get',
    '/api/analytics/realtime?minutes=5',
    null,
    'admin',
    400,
    'Validation failed: property minutes should not exist',
    'minutes',
  ],
  [
    'user report: a range (it covers all activity)',
    'get',
    '/api/analytics/user/report?from=2026-12-01',
    null,
    'user',
    400,
    'Validation failed: property from should not exist',
    'from',
  ],
  [
    'user report: unknown format',
    'get',
    '/api/analytics/user/report?format=xml',
    null,
    'user',
    400,
    FORMAT_MESSAGE,
    'format',
  ],
  [
    'system report: unknown format',
    'get',
    '/api/analytics/report?format=xml',
    null,
    'admin',
    400,
    FORMAT_MESSAGE,
    'format',
  ],
  [
    'system report: unknown time zone',
    'get',
    '/api/analytics/report?tz=Mars/Base',
    null,
    'admin',
    400,
    'tz "Mars/Base" is not an IANA time zone',
    'tz',
  ],
  [
    'live stream: user_id not a UUID',
    'get',
    '/api/track/stream?user_id=nope',
    null,
    'admin',
    400,
    'Validation failed: user_id must be a UUID',
    'user_id',
  ],
  [
    'activities: from after to',
    'get',
    '/api/activities?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z',
    null,
    'user',
    400,
    'from must be before to',
    'from',
  ],
  [
    'admin activities: from equal to to',
    'get',
    '/api/admin/users/:self/activities?from=2026-12-02T00:00:00Z&to=2026-12-02T00:00:00Z',
    null,
    'admin',
    400,
    'from must be before to',
    'from',
  ],
  // Audit log and session events
  [
    'audit: user_id not a UUID',
    'get',
    '/api/admin/audit?user_id=nope',
    null,
    'admin',
    400,
    'Validation failed: user_id must be a UUID',
    'user_id',
  ],
  [
    'audit: action too long',
    'get',
    `/api/admin/audit?action=${'x'.repeat(65)}`,
    null,
    'admin',
    400,
    'Validation failed: action must be shorter than or equal to 64 characters',
    'action',
  ],
  [
    'audit: bad cursor',
    'get',
    '/api/admin/audit?cursor=garbage',
    null,
    'admin',
    400,
    BAD_CURSOR,
    'cursor',
  ],
  // Crafted cursors: an id no JavaScript number holds exactly, text PostgreSQL would refuse (once a 500).
  [
    'session events: cursor id past 2^53 (not exact as a number)',
    'get',
    `/api/admin/session-events?cursor=${Buffer.from('[9007199254740993]').toString('base64url')}`,
    null,
    'admin',
    400,
    BAD_CURSOR,
    'cursor',
  ],
  [
    'users: cursor with a NUL in its text',
    'get',
    `/api/admin/users?cursor=${Buffer.from('[1,"\\u0000"]').toString('base64url')}`,
    null,
    'admin',
    400,
    BAD_CURSOR,
    'cursor',
  ],
  [
    'session events: user_id not a UUID',
    'get',
    '/api/admin/session-events?user_id=nope',
    null,
    'admin',
    400,
    'Validation failed: user_id must be a UUID',
    'user_id',
  ],
  [
    'session events: bad cursor',
    'get',
    '/api/admin/session-events?cursor=garbage',
    null,
    'admin',
    400,
    BAD_CURSOR,
    'cursor',
  ],
  [
    'session events: limit 0',
    'get',
    '/api/admin/session-events?limit=0',
    null,
    'admin',
    400,
    'Validation failed: limit must not be less than 1',
    'limit',
  ],
  // Consent
  [
    'consent history: bad cursor',
    'get',
    '/api/consent/history?cursor=garbage',
    null,
    'user',
    400,
    BAD_CURSOR,
    'cursor',
  ],
  [
    'consent history: limit 0',
    'get',
    '/api/consent/history?limit=0',
    null,
    'user',
    400,
    'Validation failed: limit must not be less than 1',
    'limit',
  ],
  [
    'consent: bad policy version',
    'post',
    '/api/consent',
    { consent_type: 'analytics', granted: true, policy_version: 'bad version!' },
    'user',
    400,
    'Validation failed: policy_version must be 1-32 characters of A-Z, a-z, 0-9, ".", "_" or "-"',
    'policy_version',
  ],
  // User ids in paths
  [
    'admin sessions of a non-UUID',
    'get',
    '/api/admin/users/nope/sessions',
    null,
    'admin',
    400,
    NOT_A_UUID,
    'id',
  ],
  [
    'admin revoke of a non-UUID',
    'delete',
    '/api/admin/users/nope/sessions',
    null,
    'admin',
    400,
    NOT_A_UUID,
    'id',
  ],
  [
    'admin activities of a non-UUID',
    'get',
    '/api/admin/users/nope/activities',
    null,
    'admin',
    400,
    NOT_A_UUID,
    'id',
  ],
  [
    'admin export of a non-UUID',
    'get',
    '/api/admin/users/nope/export',
    null,
    'admin',
    400,
    NOT_A_UUID,
    'id',
  ],
  [
    'admin erasure of a non-UUID',
    'delete',
    '/api/admin/users/nope/data',
    null,
    'admin',
    400,
    NOT_A_UUID,
    'id',
  ],
  [
    'admin sessions of an unknown user',
    'get',
    `/api/admin/users/${UNKNOWN_USER}/sessions`,
    null,
    'admin',
    404,
    'No such user',
  ],
  [
    'admin revoke of an unknown user',
    'delete',
    `/api/admin/users/${UNKNOWN_USER}/sessions`,
    null,
    'admin',
    404,
    'No such user',
  ],
  [
    'admin activities of an unknown user',
    'get',
    `/api/admin/users/${UNKNOWN_USER}/activities`,
    null,
    'admin',
    404,
    'No such user',
  ],
  [
    'admin export of an unknown user',
    'get',
    `/api/admin/users/${UNKNOWN_USER}/export`,
    null,
    'admin',
    404,
    'No such user',
  ],
  [
    'admin erasure of an unknown user',
    'delete',
    '/api/admin/users/00000000-0000-4000-8000-000000000000/data',
    null,
    'admin',
    404,
    'No such user',
  ],
  // Session data
  [
    'session data: read a bad key',
    'get',
    '/api/session/data/bad%20key',
    null,
    'user',
    400,
    SESSION_DATA_KEY,
    'key',
  ],
  [
    'session data: delete a bad key',
    'delete',
    '/api/session/data/bad%20key',
    null,
    'user',
    400,
    SESSION_DATA_KEY,
    'key',
  ],
  [
    'session data: delete a missing key',
    'delete',
    '/api/session/data/missing',
    null,
    'user',
    404,
    'No session data under "missing"',
  ],
  // Credentials
  [
    'reauth: no password',
    'post',
    '/auth/reauth',
    {},
    'user',
    400,
    'Validation failed: password must be longer than or equal to 1 characters, password must be a string',
    'password',
  ],
  [
    'reauth: password too long',
    'post',
    '/auth/reauth',
    { password: 'x'.repeat(257) },
    'user',
    400,
    'Validation failed: password must be shorter than or equal to 256 characters',
    'password',
  ],
  [
    'login: remember_me not a boolean',
    'post',
    '/auth/login',
    { username: 'validation-user', password: 'whatever', remember_me: 'yes' },
    'user',
    400,
    'Validation failed: remember_me must be a boolean value',
    'remember_me',
  ],
  [
    'login: username too long',
    'post',
    '/auth/login',
    { username: 'u'.repeat(65), password: 'whatever' },
    'user',
    400,
    'Validation failed: username must be shorter than or equal to 64 characters',
    'username',
  ],
  // Preferences
  [
    'preferences: empty PATCH',
    'patch',
    '/api/preferences',
    {},
    'user',
    400,
    'No preference to change',
  ],
  ['preferences: empty PUT', 'put', '/api/preferences', {}, 'user', 400, 'No preference to change'],
];

describe('bad input, route by route', () => {
  let t: TestApp;
  const callers: Partial<Record<'user' | 'admin', LoggedIn>> = {};
  beforeAll(async () => {
    // Automatic tracking off: it records the refused requests too (an api_request event
    // with the status), which is not the route's own doing.
    t = await startTestApp({ ...ADMIN_ENV, TRACKING_ENABLED: 'false' });
    callers.user = await registerAndLogin(t, 'validation-user');
    callers.admin = await loginAdmin(t);
  });
  afterAll(async () => {
    await t.close();
  });

  // A rest parameter: with more named parameters than a row has, Jest would pass `done`.
  it.each(CASES)('%s', async (...row: Case) => {
    const [, method, url, body, who, status, message, field] = row;
    const before = await databaseSnapshot(t);
    // `:self`: the calling user's own id (a user that exists).
    const target = url.replace(':self', callers.user!.userId);
    const req = t.http()[method](target).set('authorization', callers[who]!.bearer);
    const res = await (body === null ? req : req.send(body));
    expect([res.status, res.body.message]).toEqual([status, message]);
    // A 400 about a field names it in `details`, and each of its errors names it too.
    const details = res.body.details as { field: string; errors: string[] }[] | undefined;
    expect(details?.map((d) => d.field)).toEqual(field === undefined ? undefined : [field]);
    for (const error of details?.[0]?.errors ?? []) expect(error).toContain(field);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(await databaseSnapshot(t)).toBe(before);
  });
});

describe('bodies sent to routes that take none', () => {
  let t: TestApp;
  let admin: LoggedIn;
  beforeAll(async () => {
    t = await startTestApp({ ...ADMIN_ENV, TRACKING_ENABLED: 'false' });
    admin = await loginAdmin(t);
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a body with fields on every such route (400, before any check of the caller), changing nothing', async () => {
    // GET and HEAD bodies are never parsed; the other methods' are.
    const bodiless = routeRules(t.app).filter((r) => !r.takesBody && r.method !== 'GET');
    expect(bodiless.map(routeKey)).toEqual(
      expect.arrayContaining([
        'DELETE /api/gdpr/delete',
        'DELETE /api/sessions/:id',
        'POST /auth/logout',
        'POST /api/session',
      ]),
    );
    const before = await databaseSnapshot(t);
    const answers = [];
    for (const route of bodiless) {
      // The admin (fresh from login) could do all of it: only the refusal stops them.
      const url = route.pattern.replace(/:[A-Za-z_]+/g, (p) =>
        p === ':key' ? 'theme' : admin.userId,
      );
      const method = route.method.toLowerCase() as 'post' | 'put' | 'patch' | 'delete';
      const req = t.http()[method](url).set('authorization', admin.bearer);
      const res = await req.send({ confirm: false });
      answers.push([routeKey(route), res.status, res.body.message]);
    }
    expect(answers).toEqual(
      bodiless.map((r) => [
        routeKey(r),
        400,
        `Validation failed: ${routeKey(r)} takes no request body`,
      ]),
    );
    expect(await databaseSnapshot(t)).toBe(before);
  });

  it('lets no body, null and {} through', async () => {
    await t.http().post('/api/session').expect(201);
    await t
      .http()
      .post('/api/session')
      .set('content-type', 'application/json')
      .send('null')
      .expect(201);
    await t.http().post('/api/session').send({}).expect(201);
    // Some clients label every request JSON, an empty one too.
    await t.http().post('/api/session').set('content-type', 'application/json').expect(201);
    await t
      .http()
      .post('/api/session')
      .set('content-type', 'application/json; charset=utf-8')
      .send('')
      .expect(201);
  });

  it('still refuses a body-taking route an empty JSON body, naming the fields', async () => {
    const res = await t
      .http()
      .post('/auth/login')
      .set('content-type', 'application/json')
      .expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field)).toEqual([
      'username',
      'password',
    ]);
  });
});
