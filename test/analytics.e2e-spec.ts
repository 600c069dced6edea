import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AppConfig } from '../src/common/config/config';
import {
  AnalyticsReader,
  AnalyticsShutdownException,
  AnalyticsTimeoutException,
} from '../src/modules/analytics/analytics-reader';
import { EventWriter } from '../src/modules/tracking/event-writer';
import {
  ADMIN_ENV,
  LoggedIn,
  login,
  loginAdmin,
  register,
  registerAndLogin,
  sleep,
} from './support/auth';
import { insertEvents, uid } from './support/events';
import { startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

const S = 1000;
const DAY = 86_400_000;
/** Fixture A lives in the week of Monday 2026-02-02 (UTC). */
const A = Date.parse('2026-02-02T00:00:00Z');
const A_RANGE = `from=2026-02-02T00:00:00.000Z&to=2026-02-09T00:00:00.000Z`;
const u1 = uid('a', 1);
const u2 = uid('a', 2);
const s1 = uid('s', 1);
const s2 = uid('s', 2);
const s3 = uid('s', 3);
const s4 = uid('s', 4);

describe('analytics', () => {
  let t: TestApp;
  let admin: LoggedIn;
  const get = (path: string) => t.http().get(path).set('authorization', admin.bearer);
  const post = (path: string, body: object) =>
    t.http().post(path).set('authorization', admin.bearer).send(body);

  beforeAll(async () => {
    t = await startTestApp({ ...ADMIN_ENV, FEATURES: 'export=export.csv|export.pdf' });
    admin = await loginAdmin(t);
    await insertEvents(t, [
      // u1 / s1: home -> pricing (twice, same ms) -> signup.start -> signup: 100 s long
      { user: u1, session: s1, type: 'page_view', path: '/home', at: A },
      { user: u1, session: s1, type: 'page_view', path: '/pricing', at: A + 10 * S },
      { user: u1, session: s1, type: 'page_view', path: '/pricing', at: A + 10 * S },
      { user: u1, session: s1, type: 'action', name: 'signup.start', at: A + 40 * S },
      { user: u1, session: s1, type: 'page_view', path: '/signup', at: A + 100 * S },
      // u2 / s2: a single page view (0 s, bounce)
      { user: u2, session: s2, type: 'page_view', path: '/home', at: A + 1000 * S },
      // u2 / s3: pricing -> home, 30 s
      { user: u2, session: s3, type: 'page_view', path: '/pricing', at: A + 2000 * S },
      { user: u2, session: s3, type: 'page_view', path: '/home', at: A + 2030 * S },
      // anonymous s4: one page view plus a system event at the same time (bounce)
      { user: null, session: s4, type: 'page_view', path: '/home', at: A + 3000 * S },
      { user: null, session: s4, type: 'api_request', name: 'GET /x', at: A + 3000 * S },
    ]);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('access and validation', () => {
    it('is for admins only', async () => {
      const user = await registerAndLogin(t, 'curious');
      for (const path of [
        'overview',
        'pages',
        'sessions',
        'events',
        'patterns',
        'realtime',
        'active-users',
      ]) {
        await t.http().get(`/api/analytics/${path}`).set('authorization', user.bearer).expect(403);
      }
      await t
        .http()
        .post('/api/analytics/funnel')
        .set('authorization', user.bearer)
        .send({})
        .expect(403);
    });

    it.each([
      [
        'from after to',
        'pages?from=2026-02-09T00:00:00Z&to=2026-02-02T00:00:00Z',
        'from must be before to',
      ],
      [
        'from equal to to',
        'pages?from=2026-02-02T00:00:00Z&to=2026-02-02T00:00:00Z',
        'from must be before to',
      ],
      [
        'a range over 400 days',
        'pages?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
        'at most 400 days',
      ],
      ['an unknown parameter', 'pages?colour=blue', 'colour should not exist'],
      ['a bad time zone', 'active-users/series?tz=Mars/Olympus', 'not an IANA time zone'],
      ['a bad limit', 'pages?limit=0', 'limit must not be less than 1'],
      ['n out of range', 'patterns?n=5', 'n must not be greater than 4'],
      ['a non-ISO time', 'sessions?from=yesterday', 'from must be an ISO 8601 date-time'],
      // ISO 8601 forms Date.parse cannot read: they once reached SQL as NaN (500)
      ['an ordinal date', 'overview?from=2026-336', 'from must be an ISO 8601 date-time'],
      ['a week date', 'events?to=2026-W49', 'to must be an ISO 8601 date-time'],
      ['a basic-format time', 'pages?from=20261202T191500Z', 'from must be an ISO 8601 date-time'],
      [
        'a time without a UTC offset',
        'overview?from=2026-11-28T00:00:00',
        'from must be an ISO 8601 date-time with a UTC offset',
      ],
      ['include_api not a boolean', 'sessions?include_api=yes', 'include_api must be a boolean'],
    ])('rejects %s with 400', async (_label, path, message) => {
      const res = await get(`/api/analytics/${path}`).expect(400);
      expect(res.body.message).toContain(message);
    });
  });

  describe('GET /api/analytics/pages', () => {
    it('counts views, visitors, entries, exits and exit rate per path', async () => {
      const res = await get(`/api/analytics/pages?${A_RANGE}`).expect(200);
      expect(res.body.items).toEqual([
        { page: '/home', views: 4, visitors: 3, entries: 3, exits: 3, exit_rate: 0.75 },
        { page: '/pricing', views: 3, visitors: 2, entries: 1, exits: 0, exit_rate: 0 },
        { page: '/signup', views: 1, visitors: 1, entries: 0, exits: 1, exit_rate: 1 },
      ]);
    });

    it('answers an empty range with no items', async () => {
      const res = await get(
        '/api/analytics/pages?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z',
      ).expect(200);
      expect(res.body.items).toEqual([]);
    });

    it('honours limit, ties broken by path', async () => {
      const res = await get(`/api/analytics/pages?${A_RANGE}&limit=2`).expect(200);
      expect(res.body.items.map((i: { page: string }) => i.page)).toEqual(['/home', '/pricing']);
    });
  });

  describe('GET /api/analytics/sessions', () => {
    it('computes count, mean, median, p90, share of zero-length sessions and bounce rate', async () => {
      const res = await get(`/api/analytics/sessions?${A_RANGE}`).expect(200);
      // durations: s1 100 s, s2 0, s3 30 s, s4 0 -> sorted [0, 0, 30, 100]
      expect(res.body).toEqual({
        count: 4,
        mean_s: 32.5,
        median_s: 15,
        p90_s: 100,
        share_zero: 0.5,
        bounce_rate: 0.5,
      });
    });

    it('answers an empty range with zero count and null figures', async () => {
      const res = await get(
        '/api/analytics/sessions?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z',
      ).expect(200);
      expect(res.body).toEqual({
        count: 0,
        mean_s: null,
        median_s: null,
        p90_s: null,
        share_zero: null,
        bounce_rate: null,
      });
    });
  });

  describe('GET /api/analytics/events', () => {
    it('breaks events down by type and by action name', async () => {
      const res = await get(`/api/analytics/events?${A_RANGE}`).expect(200);
      expect(res.body.items).toEqual([
        { type: 'page_view', name: null, events: 8, actors: 3, sessions: 4 },
        { type: 'action', name: null, events: 1, actors: 1, sessions: 1 },
        { type: 'api_request', name: null, events: 1, actors: 1, sessions: 1 },
        { type: 'action', name: 'signup.start', events: 1, actors: 1, sessions: 1 },
      ]);
      const noApi = await get(`/api/analytics/events?${A_RANGE}&include_api=false`).expect(200);
      expect(noApi.body.items.map((i: { type: string }) => i.type)).not.toContain('api_request');
    });
  });

  describe('GET /api/analytics/overview', () => {
    it('reports the range beside the previous period of equal length', async () => {
      const res = await get(`/api/analytics/overview?${A_RANGE}`).expect(200);
      expect(res.body.previous_from).toBe('2026-01-26T00:00:00.000Z');
      expect(res.body.previous_to).toBe('2026-02-02T00:00:00.000Z');
      expect(res.body.metrics).toEqual({
        events: { value: 10, previous: 0 },
        page_views: { value: 8, previous: 0 },
        active_users: { value: 3, previous: 0 },
        sessions: { value: 4, previous: 0 },
        mean_session_duration_s: { value: 32.5, previous: null },
        median_session_duration_s: { value: 15, previous: null },
        bounce_rate: { value: 0.5, previous: null },
      });
    });

    it('leaves api_request events out with include_api=false, as the other endpoints do', async () => {
      const all = await get(`/api/analytics/overview?${A_RANGE}`).expect(200);
      const res = await get(`/api/analytics/overview?${A_RANGE}&include_api=false`).expect(200);
      // s4's api_request is the only one: one event fewer, the same sessions and actors.
      expect(res.body.metrics).toEqual({
        ...all.body.metrics,
        events: { value: 9, previous: 0 },
      });
      const sessions = await get(`/api/analytics/sessions?${A_RANGE}&include_api=false`);
      expect(res.body.metrics.sessions.value).toBe(sessions.body.count);
      const events = await get(`/api/analytics/events?${A_RANGE}&include_api=false`);
      const byType = events.body.items.filter((i: { name: string | null }) => i.name === null);
      expect(byType.reduce((sum: number, i: { events: number }) => sum + i.events, 0)).toBe(9);
    });
  });

  describe('patterns and transitions', () => {
    it('finds collapsed n-grams with counts, sessions and support', async () => {
      const res = await get(`/api/analytics/patterns?${A_RANGE}&n=2`).expect(200);
      expect(res.body.total_sessions).toBe(4);
      expect(res.body.items).toEqual([
        { sequence: ['/home', '/pricing'], count: 1, sessions: 1, support: 0.25 },
        { sequence: ['/pricing', '/home'], count: 1, sessions: 1, support: 0.25 },
        { sequence: ['/pricing', 'action:signup.start'], count: 1, sessions: 1, support: 0.25 },
        { sequence: ['action:signup.start', '/signup'], count: 1, sessions: 1, support: 0.25 },
      ]);
      // The top `limit` after the parts are merged: ties broken by byte order, as above.
      const top = await get(`/api/analytics/patterns?${A_RANGE}&n=2&limit=2`).expect(200);
      expect(top.body.items.map((i: { sequence: string[] }) => i.sequence)).toEqual([
        ['/home', '/pricing'],
        ['/pricing', '/home'],
      ]);
      const three = await get(`/api/analytics/patterns?${A_RANGE}`).expect(200);
      expect(three.body.items).toEqual([
        {
          sequence: ['/home', '/pricing', 'action:signup.start'],
          count: 1,
          sessions: 1,
          support: 0.25,
        },
        {
          sequence: ['/pricing', 'action:signup.start', '/signup'],
          count: 1,
          sessions: 1,
          support: 0.25,
        },
      ]);
    });

    it('gives next-item probabilities with $exit', async () => {
      const home = await get(`/api/analytics/transitions?${A_RANGE}&item=/home`).expect(200);
      expect(home.body).toEqual({
        item: '/home',
        total: 4,
        items: [
          { next: '$exit', count: 3, probability: 0.75 },
          { next: '/pricing', count: 1, probability: 0.25 },
        ],
      });
      const pricing = await get(`/api/analytics/transitions?${A_RANGE}&item=/pricing`).expect(200);
      expect(pricing.body.items).toEqual([
        { next: '/home', count: 1, probability: 0.5 },
        { next: 'action:signup.start', count: 1, probability: 0.5 },
      ]);
    });

    it('takes a page item as tracked pages are stored (a URL, a trailing slash, a query)', async () => {
      for (const item of ['/home/', 'https://app.example/home?ref=mail', '/home#top']) {
        const res = await get(
          `/api/analytics/transitions?${A_RANGE}&item=${encodeURIComponent(item)}`,
        ).expect(200);
        expect([item, res.body.item, res.body.total]).toEqual([item, '/home', 4]);
      }
    });

    it('requires the item of a transition query', async () => {
      for (const query of ['', '&item=', `&item=${'x'.repeat(2049)}`, '&item=a&item=b']) {
        const res = await get(`/api/analytics/transitions?${A_RANGE}${query}`).expect(400);
        expect(res.body.details).toEqual([
          {
            field: 'item',
            errors: [
              'item must be a page path, an event type or action:<name> (1-2048 characters)',
            ],
          },
        ]);
      }
    });

    it('counts api requests as items with include_api=true', async () => {
      // s4: /home, then its api_request at the same millisecond (inserted after it).
      const pairs = await get(`/api/analytics/patterns?${A_RANGE}&n=2&include_api=true`).expect(
        200,
      );
      expect(pairs.body.total_sessions).toBe(4);
      expect(pairs.body.items).toContainEqual({
        sequence: ['/home', 'api_request'],
        count: 1,
        sessions: 1,
        support: 0.25,
      });
      expect(pairs.body.items).toHaveLength(5);
      const home = await get(
        `/api/analytics/transitions?${A_RANGE}&item=/home&include_api=true`,
      ).expect(200);
      expect(home.body).toEqual({
        item: '/home',
        total: 4,
        items: [
          { next: '$exit', count: 2, probability: 0.5 },
          { next: '/pricing', count: 1, probability: 0.25 },
          { next: 'api_request', count: 1, probability: 0.25 },
        ],
      });
    });

    it('reads only the items inside the range of sessions cut by either end', async () => {
      // From A+20 s s1 keeps signup.start and /signup; up to A+2015 s s3 keeps /pricing only;
      // s2 lies inside; s4 lies after the range.
      const cut = `from=${new Date(A + 20 * S).toISOString()}&to=${new Date(A + 2015 * S).toISOString()}`;
      const pairs = await get(`/api/analytics/patterns?${cut}&n=2`).expect(200);
      expect(pairs.body).toEqual({
        n: 2,
        total_sessions: 3,
        items: [
          {
            sequence: ['action:signup.start', '/signup'],
            count: 1,
            sessions: 1,
            support: 1 / 3,
          },
        ],
      });
      const pricing = await get(`/api/analytics/transitions?${cut}&item=/pricing`).expect(200);
      expect(pricing.body).toEqual({
        item: '/pricing',
        total: 1,
        items: [{ next: '$exit', count: 1, probability: 1 }],
      });
      const start = await get(`/api/analytics/transitions?${cut}&item=action:signup.start`).expect(
        200,
      );
      expect(start.body.items).toEqual([{ next: '/signup', count: 1, probability: 1 }]);
      const home = await get(`/api/analytics/transitions?${cut}&item=/home`).expect(200);
      expect(home.body.items).toEqual([{ next: '$exit', count: 1, probability: 1 }]);
    });
  });

  describe('POST /api/analytics/funnel', () => {
    const steps = [
      { type: 'page_view', page: '/home' },
      { type: 'page_view', page: '/pricing' },
      { type: 'action', name: 'signup.*' },
    ];
    const range = { from: '2026-02-02T00:00:00Z', to: '2026-02-09T00:00:00Z' };

    it('counts users through ordered steps with the furthest attempt', async () => {
      const res = await post('/api/analytics/funnel', { steps, window_s: 86_400, ...range }).expect(
        200,
      );
      expect(
        res.body.steps.map((s: Record<string, unknown>) => [
          s.count,
          s.conversion_from_start,
          s.conversion_from_previous,
          s.dropped,
          s.median_time_from_previous_s,
        ]),
      ).toEqual([
        [3, 1, 1, 0, null],
        [2, 2 / 3, 2 / 3, 1, 505],
        [1, 1 / 3, 0.5, 1, 30],
      ]);
    });

    it('matches wildcard patterns case-sensitively, as = does, on both databases', async () => {
      const at = (minute: number) => `2023-05-01T10:${String(minute).padStart(2, '0')}:00Z`;
      await insertEvents(t, [
        { user: uid('cs', 1), session: uid('cz', 1), type: 'page_view', path: '/Admin', at: at(0) },
        { user: uid('cs', 1), session: uid('cz', 1), type: 'action', name: 'Zeta.x', at: at(1) },
        {
          user: uid('cs', 2),
          session: uid('cz', 2),
          type: 'page_view',
          path: '/admin/users',
          at: at(2),
        },
        { user: uid('cs', 2), session: uid('cz', 2), type: 'action', name: 'zeta.y', at: at(3) },
        { user: uid('cs', 3), session: uid('cz', 3), type: 'page_view', path: '/ADMIN', at: at(4) },
        { user: uid('cs', 3), session: uid('cz', 3), type: 'action', name: 'beta.zeta', at: at(5) },
      ]);
      const counts = async (pagePattern: string, namePattern: string) => {
        const res = await post('/api/analytics/funnel', {
          steps: [
            { type: 'page_view', page: pagePattern },
            { type: 'action', name: namePattern },
          ],
          from: '2023-05-01T00:00:00Z',
          to: '2023-05-02T00:00:00Z',
        }).expect(200);
        return res.body.steps.map((step: { count: number }) => step.count);
      };
      expect(await counts('/admin*', '*eta*')).toEqual([1, 1]); // prefix: not /Admin, /ADMIN
      expect(await counts('*min', 'Zeta*')).toEqual([1, 1]); // suffix: /Admin only
      expect(await counts('*', '*.Y')).toEqual([3, 0]); // zeta.y does not end in .Y
      expect(await counts('*DMI*', '*zeta')).toEqual([1, 1]); // substring: /ADMIN, beta.zeta
    });

    it('matches wildcard page patterns against paths as they are stored (percent-encoded)', async () => {
      const at = (minute: number) => `2023-05-02T10:${String(minute).padStart(2, '0')}:00Z`;
      // Tracked as /café/menu and /my page/: stored normalised.
      await insertEvents(t, [
        {
          user: uid('pe', 1),
          session: uid('ps', 1),
          type: 'page_view',
          path: '/caf%C3%A9/menu',
          at: at(0),
        },
        {
          user: uid('pe', 2),
          session: uid('ps', 2),
          type: 'page_view',
          path: '/my%20page',
          at: at(1),
        },
        { user: uid('pe', 3), session: uid('ps', 3), type: 'page_view', path: '/cafe', at: at(2) },
      ]);
      const firstStep = async (page: string) => {
        const res = await post('/api/analytics/funnel', {
          steps: [{ type: 'page_view', page }, { type: 'custom' }],
          from: '2023-05-02T00:00:00Z',
          to: '2023-05-03T00:00:00Z',
        }).expect(200);
        return [page, res.body.steps[0].count];
      };
      for (const [page, count] of [
        ['/café/menu', 1],
        ['/café*', 1],
        ['/café/*', 1],
        ['*é/menu', 1],
        ['*afé*', 1],
        ['/my page*', 1],
        ['*page/', 1],
        ['*y pag*', 1],
        ['/caf*', 2],
        ['*/', 0], // the root's slash: none of these pages is the root
        ['*/../*', 0], // `..` is text here, not a step up to every page
      ] as const) {
        expect(await firstStep(page)).toEqual([page, count]);
      }
    });

    it('matches automatic api_request events by their name, which has a space', async () => {
      const at = (minute: number) => `2023-05-03T10:${String(minute).padStart(2, '0')}:00Z`;
      await insertEvents(t, [
        {
          user: uid('ap', 1),
          session: uid('aq', 1),
          type: 'api_request',
          name: 'GET /api/things/:id',
          at: at(0),
        },
        {
          user: uid('ap', 1),
          session: uid('aq', 1),
          type: 'api_request',
          name: 'POST /api/things',
          at: at(1),
        },
        {
          user: uid('ap', 2),
          session: uid('aq', 2),
          type: 'api_request',
          name: 'GET /api/things/:id',
          at: at(2),
        },
      ]);
      const res = await post('/api/analytics/funnel', {
        steps: [
          { type: 'api_request', name: 'GET /api/things/:id' },
          { type: 'api_request', name: 'POST *' },
        ],
        from: '2023-05-03T00:00:00Z',
        to: '2023-05-04T00:00:00Z',
      }).expect(200);
      expect(res.body.steps.map((step: { count: number }) => step.count)).toEqual([2, 1]);
    });

    it('mixes steps with only a type and page-view steps with a page (SQLite once gave 500)', async () => {
      const at = (minute: number) => `2023-06-01T10:${String(minute).padStart(2, '0')}:00Z`;
      const u1 = { user: uid('mx', 1), session: uid('my', 1) };
      const u2 = { user: uid('mx', 2), session: uid('my', 2) };
      await insertEvents(t, [
        { ...u1, type: 'page_view', path: '/start', at: at(0) },
        { ...u1, type: 'page_view', path: '/next', at: at(1) },
        { ...u1, type: 'action', name: 'any', at: at(3) },
        { ...u2, type: 'page_view', path: '/start', at: at(0) },
        { ...u2, type: 'action', name: 'early', at: at(1) },
        { ...u2, type: 'page_view', path: '/next', at: at(2) },
      ]);
      const counts = async (later: Record<string, string>[]) => {
        const res = await post('/api/analytics/funnel', {
          steps: [{ type: 'page_view', page: '/start' }, ...later],
          from: '2023-06-01T00:00:00Z',
          to: '2023-06-02T00:00:00Z',
        }).expect(200);
        return res.body.steps.map((step: { count: number }) => step.count);
      };
      // u2's action comes before its /next, so only u1 reaches the action.
      expect(await counts([{ type: 'page_view', page: '/next' }, { type: 'action' }])).toEqual([
        2, 2, 1,
      ]);
      // Step 2 takes the first page view after /start, which is each user's only /next.
      expect(await counts([{ type: 'page_view' }, { type: 'page_view', page: '/next' }])).toEqual([
        2, 2, 0,
      ]);
      // u1's action comes after its /next; u2's before.
      expect(await counts([{ type: 'action' }, { type: 'page_view', page: '/next' }])).toEqual([
        2, 2, 1,
      ]);
    });

    it('counts sessions when unit=session', async () => {
      const res = await post('/api/analytics/funnel', {
        steps,
        window_s: 86_400,
        unit: 'session',
        ...range,
      }).expect(200);
      expect(res.body.steps.map((s: { count: number }) => s.count)).toEqual([4, 1, 1]);
    });

    it('measures the window from step 1, inclusive at its edge', async () => {
      const E = Date.parse('2026-03-02T00:00:00Z');
      await insertEvents(t, [
        { user: uid('e', 1), session: uid('t', 1), type: 'page_view', path: '/in', at: E },
        {
          user: uid('e', 1),
          session: uid('t', 1),
          type: 'page_view',
          path: '/out',
          at: E + 60 * S,
        },
        { user: uid('e', 2), session: uid('t', 2), type: 'page_view', path: '/in', at: E },
        {
          user: uid('e', 2),
          session: uid('t', 2),
          type: 'page_view',
          path: '/out',
          at: E + 60 * S + 1,
        },
      ]);
      const res = await post('/api/analytics/funnel', {
        steps: [
          { type: 'page_view', page: '/in' },
          { type: 'page_view', page: '/out' },
        ],
        window_s: 60,
        from: '2026-03-02T00:00:00Z',
        to: '2026-03-03T00:00:00Z',
      }).expect(200);
      expect(res.body.steps.map((s: { count: number }) => s.count)).toEqual([2, 1]);
      expect(res.body.steps[1].median_time_from_previous_s).toBe(60);
    });

    it('orders equal timestamps by id and needs distinct events for repeated steps', async () => {
      const E = Date.parse('2026-03-05T00:00:00Z');
      await insertEvents(t, [
        // same millisecond: /a then /b in id order -> converts
        { user: uid('e', 3), session: uid('t', 3), type: 'page_view', path: '/a', at: E },
        { user: uid('e', 3), session: uid('t', 3), type: 'page_view', path: '/b', at: E },
        // same millisecond, but /b has the lower id -> does not convert
        { user: uid('e', 4), session: uid('t', 4), type: 'page_view', path: '/b', at: E },
        { user: uid('e', 4), session: uid('t', 4), type: 'page_view', path: '/a', at: E },
        // repeated step: one /r is not enough, two are
        { user: uid('e', 5), session: uid('t', 5), type: 'page_view', path: '/r', at: E },
        { user: uid('e', 6), session: uid('t', 6), type: 'page_view', path: '/r', at: E },
        { user: uid('e', 6), session: uid('t', 6), type: 'page_view', path: '/r', at: E + S },
      ]);
      const window = { from: '2026-03-05T00:00:00Z', to: '2026-03-06T00:00:00Z' };
      const ab = await post('/api/analytics/funnel', {
        steps: [
          { type: 'page_view', page: '/a' },
          { type: 'page_view', page: '/b' },
        ],
        ...window,
      }).expect(200);
      expect(ab.body.steps.map((s: { count: number }) => s.count)).toEqual([2, 1]);
      const rr = await post('/api/analytics/funnel', {
        steps: [
          { type: 'page_view', page: '/r' },
          { type: 'page_view', page: '/r' },
        ],
        ...window,
      }).expect(200);
      expect(rr.body.steps.map((s: { count: number }) => s.count)).toEqual([2, 1]);
      expect(rr.body.steps[1].conversion_from_previous).toBe(0.5);
    });

    it('answers an empty range with zero counts and null rates', async () => {
      const res = await post('/api/analytics/funnel', {
        steps,
        from: '2020-01-01T00:00:00Z',
        to: '2020-01-02T00:00:00Z',
      }).expect(200);
      expect(
        res.body.steps.map((s: Record<string, unknown>) => [s.count, s.conversion_from_start]),
      ).toEqual([
        [0, null],
        [0, null],
        [0, null],
      ]);
    });

    it.each([
      ['one step', { steps: [{ type: 'page_view' }] }, 'steps must contain at least 2 elements'],
      [
        'eleven steps',
        { steps: Array.from({ length: 11 }, () => ({ type: 'page_view' })) },
        'steps must contain no more than 10 elements',
      ],
      ['a window under a minute', { steps, window_s: 59 }, 'window_s must not be less than 60'],
      [
        'a window over 90 days',
        { steps, window_s: 90 * 86_400 + 1 },
        'window_s must not be greater than 7776000',
      ],
      [
        'an unknown step type',
        { steps: [{ type: 'visit' }, { type: 'page_view' }] },
        'type must be one of the following values',
      ],
      ['a bad unit', { steps, unit: 'team' }, 'unit must be one of the following values'],
      [
        'from after to',
        { steps, from: '2026-02-09T00:00:00Z', to: '2026-02-02T00:00:00Z' },
        'from must be before to',
      ],
      [
        'a NUL in a page pattern',
        { steps: [{ type: 'page_view', page: '/a\u0000*' }, ...steps] },
        'page must not contain NUL characters',
      ],
    ])('rejects %s with 400', async (_label, body, message) => {
      const res = await post('/api/analytics/funnel', body).expect(400);
      expect(res.body.message).toContain(message);
    });
  });

  describe('POST /api/analytics/retention', () => {
    beforeAll(async () => {
      await insertEvents(t, [
        {
          user: uid('r', 4),
          session: uid('q', 40),
          type: 'custom',
          name: 'x',
          at: '2025-12-29T12:00:00Z',
        },
        {
          user: uid('r', 4),
          session: uid('q', 41),
          type: 'custom',
          name: 'x',
          at: '2026-01-06T12:00:00Z',
        },
        {
          user: uid('r', 1),
          session: uid('q', 10),
          type: 'custom',
          name: 'x',
          at: '2026-01-05T12:00:00Z',
        },
        {
          user: uid('r', 1),
          session: uid('q', 11),
          type: 'custom',
          name: 'x',
          at: '2026-01-13T12:00:00Z',
        },
        {
          user: uid('r', 2),
          session: uid('q', 20),
          type: 'custom',
          name: 'x',
          at: '2026-01-06T12:00:00Z',
        },
        {
          user: uid('r', 2),
          session: uid('q', 21),
          type: 'custom',
          name: 'x',
          at: '2026-01-20T12:00:00Z',
        },
        {
          user: uid('r', 3),
          session: uid('q', 30),
          type: 'custom',
          name: 'x',
          at: '2026-01-13T12:00:00Z',
        },
        {
          user: uid('r', 3),
          session: uid('q', 31),
          type: 'custom',
          name: 'x',
          at: '2026-01-21T12:00:00Z',
        },
      ]);
    });

    it('builds weekly cohorts from first-ever start events', async () => {
      const res = await post('/api/analytics/retention', {
        start: { type: 'custom', name: 'x' },
        return: { type: 'custom', name: 'x' },
        period: 'week',
        periods: 2,
        from: '2026-01-05T00:00:00Z',
        to: '2026-01-19T00:00:00Z',
      }).expect(200);
      expect(res.body.cohorts).toEqual([
        {
          cohort: '2026-01-05',
          start: '2026-01-05T00:00:00.000Z',
          size: 2,
          retained: [1, 1],
          rates: [0.5, 0.5],
        },
        {
          cohort: '2026-01-12',
          start: '2026-01-12T00:00:00.000Z',
          size: 1,
          retained: [1, 0],
          rates: [1, 0],
        },
      ]);
    });

    it('leaves cells of periods that have not ended null', async () => {
      const now = Date.now();
      const yesterdayNoon = Math.floor(now / DAY) * DAY - DAY / 2;
      await insertEvents(t, [
        {
          user: uid('r', 9),
          session: uid('q', 90),
          type: 'custom',
          name: 'fresh',
          at: yesterdayNoon,
        },
      ]);
      const res = await post('/api/analytics/retention', {
        start: { type: 'custom', name: 'fresh' },
        period: 'day',
        periods: 3,
        from: new Date(Math.floor(now / DAY) * DAY - DAY).toISOString(),
        to: new Date(Math.floor(now / DAY) * DAY).toISOString(),
      }).expect(200);
      expect(res.body.cohorts).toEqual([
        expect.objectContaining({
          size: 1,
          retained: [null, null, null],
          rates: [null, null, null],
        }),
      ]);
    });

    it('starts each day afresh where a daylight-saving change skips midnight', async () => {
      // America/Santiago moves from UTC-4 to UTC-3 at midnight on 2026-09-06: that day starts
      // at 01:00 (04:00Z), the next at 00:00 (2026-09-07T03:00Z). 00:30 on the 7th is 03:30Z.
      await insertEvents(t, [
        {
          user: uid('dst', 1),
          session: uid('dss', 1),
          type: 'custom',
          name: 'santiago',
          at: '2026-09-07T03:30:00Z',
        },
      ]);
      const res = await post('/api/analytics/retention', {
        start: { type: 'custom', name: 'santiago' },
        period: 'day',
        periods: 1,
        tz: 'America/Santiago',
        from: '2026-09-05T04:00:00Z',
        to: '2026-09-09T03:00:00Z',
      }).expect(200);
      expect(
        res.body.cohorts.map((c: { cohort: string; start: string; size: number }) => [
          c.cohort,
          c.start,
          c.size,
        ]),
      ).toEqual([
        ['2026-09-05', '2026-09-05T04:00:00.000Z', 0],
        ['2026-09-06', '2026-09-06T04:00:00.000Z', 0],
        ['2026-09-07', '2026-09-07T03:00:00.000Z', 1],
        ['2026-09-08', '2026-09-08T03:00:00.000Z', 0],
      ]);
    });

    it('takes only cohorts whose period starts in [from, to)', async () => {
      // Two actors first seen a day apart, across a Monday (week start in UTC).
      await insertEvents(t, [
        {
          user: uid('k', 1),
          session: uid('j', 1),
          type: 'custom',
          name: 'weekly',
          at: '2026-11-01T10:00:00Z',
        },
        {
          user: uid('k', 2),
          session: uid('j', 2),
          type: 'custom',
          name: 'weekly',
          at: '2026-11-02T10:00:00Z',
        },
      ]);
      const cohortsOf = async (from: string) =>
        (
          await post('/api/analytics/retention', {
            start: { type: 'custom', name: 'weekly' },
            period: 'week',
            periods: 1,
            from,
            to: '2026-11-09T00:00:00Z',
          }).expect(200)
        ).body.cohorts.map((c: { cohort: string; size: number }) => [c.cohort, c.size]);
      // From Sunday: the week of Oct 26 starts before `from`, and is not a cohort.
      expect(await cohortsOf('2026-11-01T00:00:00Z')).toEqual([['2026-11-02', 1]]);
      expect(await cohortsOf('2026-10-26T00:00:00Z')).toEqual([
        ['2026-10-26', 1],
        ['2026-11-02', 1],
      ]);
      const none = await post('/api/analytics/retention', {
        period: 'week',
        from: '2026-11-03T00:00:00Z',
        to: '2026-11-08T00:00:00Z',
      }).expect(200);
      expect(none.body.cohorts).toEqual([]);
    });

    it('defaults to `periods` cohorts: the current period and those before it', async () => {
      const res = await post('/api/analytics/retention', { period: 'week', periods: 2 }).expect(
        200,
      );
      const monday = (weeksBack: number) => {
        const today = new Date(Math.floor(Date.now() / DAY) * DAY);
        const sinceMonday = (today.getUTCDay() + 6) % 7;
        return new Date(today.getTime() - (sinceMonday + 7 * weeksBack) * DAY)
          .toISOString()
          .slice(0, 10);
      };
      expect(res.body.cohorts.map((c: { cohort: string }) => c.cohort)).toEqual([
        monday(1),
        monday(0),
      ]);
    });

    it.each([
      ['a bad period', { period: 'year' }, 'period must be one of'],
      ['too many periods', { period: 'day', periods: 53 }, 'periods must not be greater than 52'],
      [
        'a bad matcher',
        { period: 'day', start: { type: 'nope' } },
        'type must be one of the following values: login',
      ],
      ['a null time zone', { period: 'day', tz: null }, 'tz must be a string'],
    ])('rejects %s with 400', async (_label, body, message) => {
      const res = await post('/api/analytics/retention', body).expect(400);
      expect(res.body.message).toContain(message);
    });
  });

  describe('active users', () => {
    it('gives DAU, WAU, MAU and stickiness per day', async () => {
      await insertEvents(t, [
        {
          user: uid('d', 3),
          session: uid('w', 3),
          type: 'custom',
          name: 'x',
          at: '2026-04-10T10:00:00Z',
        },
        {
          user: uid('d', 1),
          session: uid('w', 1),
          type: 'custom',
          name: 'x',
          at: '2026-05-04T10:00:00Z',
        },
        {
          user: uid('d', 1),
          session: uid('w', 1),
          type: 'custom',
          name: 'x',
          at: '2026-05-05T10:00:00Z',
        },
        {
          user: uid('d', 2),
          session: uid('w', 2),
          type: 'custom',
          name: 'x',
          at: '2026-05-05T23:30:00Z',
        },
      ]);
      const res = await get(
        '/api/analytics/active-users/series?from=2026-05-04T00:00:00Z&to=2026-05-06T00:00:00Z',
      ).expect(200);
      expect(res.body.items).toEqual([
        { date: '2026-05-04', dau: 1, wau: 1, mau: 2, stickiness: 0.5 },
        { date: '2026-05-05', dau: 2, wau: 2, mau: 3, stickiness: 2 / 3 },
      ]);
      // In Berlin (UTC+2 in May) the 23:30 UTC event falls on May 6.
      const berlin = await get(
        '/api/analytics/active-users/series?from=2026-05-03T22:00:00Z&to=2026-05-05T22:00:00Z&tz=Europe/Berlin',
      ).expect(200);
      expect(berlin.body.items.map((d: { date: string; dau: number }) => [d.date, d.dau])).toEqual([
        ['2026-05-04', 1],
        ['2026-05-05', 1],
      ]);
    });

    it('counts an actor in WAU for exactly 7 days and in MAU for exactly 30 after its last activity', async () => {
      // A: Jan 1 (two sessions that day) and Jan 4; B: two sessions on Jan 10.
      const at = (user: number, session: number, day: string) => ({
        user: uid('e', user),
        session: uid('v', session),
        type: 'custom' as const,
        name: 'x',
        at: `${day}T12:00:00Z`,
      });
      await insertEvents(t, [
        at(1, 1, '2024-01-01'),
        at(1, 2, '2024-01-01'),
        at(1, 3, '2024-01-04'),
        at(2, 4, '2024-01-10'),
        at(2, 5, '2024-01-10'),
      ]);
      const res = await get(
        '/api/analytics/active-users/series?from=2024-01-10T00:00:00Z&to=2024-02-10T00:00:00Z',
      ).expect(200);
      const byDate = new Map(
        res.body.items.map((d: { date: string; dau: number; wau: number; mau: number }) => [
          d.date,
          [d.dau, d.wau, d.mau],
        ]),
      );
      expect(res.body.items).toHaveLength(31);
      // [DAU, WAU (d-6..d), MAU (d-29..d)]
      expect(
        Object.fromEntries(
          [
            '2024-01-10', // A (Jan 4) and B in the week, B once in DAU despite two sessions
            '2024-01-11', // Jan 5..11: A's Jan 4 has left the week
            '2024-01-16', // Jan 10..16: B's last day of WAU
            '2024-01-17',
            '2024-01-30', // Jan 1..30: A twice, counted once
            '2024-02-02', // Jan 4..Feb 2: A's last day of MAU
            '2024-02-03',
            '2024-02-08', // Jan 10..Feb 8: B's last day of MAU
            '2024-02-09',
          ].map((date) => [date, byDate.get(date)]),
        ),
      ).toEqual({
        '2024-01-10': [1, 2, 2],
        '2024-01-11': [0, 1, 2],
        '2024-01-16': [0, 1, 2],
        '2024-01-17': [0, 0, 2],
        '2024-01-30': [0, 0, 2],
        '2024-02-02': [0, 0, 2],
        '2024-02-03': [0, 0, 1],
        '2024-02-08': [0, 0, 1],
        '2024-02-09': [0, 0, 0],
      });
    });

    it('counts every active day once for users with a session across midnight or an event without a session', async () => {
      // A user with such a session or event has all their days counted from the events; the
      // other users from their sessions. A user split between the two would count twice.
      const event = (user: number | null, session: number | null, at: string) => ({
        user: user === null ? null : uid('irra', user),
        session: session === null ? null : uid('irrb', session),
        type: 'custom' as const,
        name: 'x',
        at,
      });
      await insertEvents(t, [
        // U1: March 1, a session from 23:30 on March 3 to 00:30 on March 4, March 12.
        event(1, 1, '2023-03-01T12:00:00Z'),
        event(1, 2, '2023-03-03T23:30:00Z'),
        event(1, 2, '2023-03-04T00:30:00Z'),
        event(1, 3, '2023-03-12T12:00:00Z'),
        // U2: an event without a session and a session on March 2, a session on March 5.
        event(2, null, '2023-03-02T12:00:00Z'),
        event(2, 4, '2023-03-02T13:00:00Z'),
        event(2, 5, '2023-03-05T12:00:00Z'),
        // U3 (sessions within a day only): March 1, two sessions on March 8.
        event(3, 6, '2023-03-01T12:00:00Z'),
        event(3, 7, '2023-03-08T10:00:00Z'),
        event(3, 8, '2023-03-08T12:00:00Z'),
        // Anonymous: one session across midnight from March 6 to 7, one on March 6.
        event(null, 9, '2023-03-06T23:50:00Z'),
        event(null, 9, '2023-03-07T00:10:00Z'),
        event(null, 10, '2023-03-06T12:00:00Z'),
      ]);
      const res = await get(
        '/api/analytics/active-users/series?from=2023-03-01T00:00:00Z&to=2023-03-13T00:00:00Z',
      ).expect(200);
      // [date, DAU, WAU (d-6..d), MAU]
      expect(
        res.body.items.map((d: { date: string; dau: number; wau: number; mau: number }) => [
          d.date.slice(8),
          d.dau,
          d.wau,
          d.mau,
        ]),
      ).toEqual([
        ['01', 2, 2, 2],
        ['02', 1, 3, 3],
        ['03', 1, 3, 3],
        ['04', 1, 3, 3],
        ['05', 1, 3, 3],
        ['06', 2, 5, 5],
        ['07', 1, 5, 5],
        ['08', 1, 5, 5],
        ['09', 0, 5, 5],
        ['10', 0, 5, 5],
        ['11', 0, 4, 5], // U1's March 4 has left the week
        ['12', 1, 4, 5], // U2's March 5 has left, U1 is back
      ]);
      // The report asks for the series in one query, not in parts: the same figures.
      const report = await get(
        '/api/analytics/report?from=2023-03-01T00:00:00Z&to=2023-03-13T00:00:00Z',
      ).expect(200);
      expect(report.body.active_users).toEqual(res.body.items);
    });

    it('counts the days of sessions that began before the series looks back', async () => {
      // One day, June 30: MAU looks back to June 1. A's and B's sessions began on May 31 and
      // went on into June 1, so both count in MAU; A is also active on June 30.
      const event = (user: number, session: number, at: string) => ({
        user: uid('lba', user),
        session: uid('lbb', session),
        type: 'custom' as const,
        name: 'x',
        at,
      });
      await insertEvents(t, [
        event(1, 1, '2019-05-31T23:00:00Z'),
        event(1, 1, '2019-06-01T00:30:00Z'),
        event(1, 2, '2019-06-30T12:00:00Z'),
        event(2, 3, '2019-05-31T23:30:00Z'),
        event(2, 3, '2019-06-01T00:10:00Z'),
      ]);
      const res = await get(
        '/api/analytics/active-users/series?from=2019-06-30T00:00:00Z&to=2019-07-01T00:00:00Z',
      ).expect(200);
      expect(res.body.items).toEqual([
        { date: '2019-06-30', dau: 1, wau: 1, mau: 2, stickiness: 0.5 },
      ]);
    });

    it('counts distinct actors over the last N hours and in real time', async () => {
      // Users who logged in during this file (admin, ...) are active too: count from them.
      const baseHour = (await get('/api/analytics/active-users?hours=1').expect(200)).body
        .active_users;
      const baseFour = (await get('/api/analytics/active-users?hours=4').expect(200)).body
        .active_users;
      const baseNow = (await get('/api/analytics/realtime').expect(200)).body.active_users;
      const now = Date.now();
      await insertEvents(t, [
        {
          user: uid('h', 1),
          session: uid('v', 1),
          type: 'custom',
          name: 'x',
          at: now - 2 * 60_000,
        },
        {
          user: uid('h', 2),
          session: uid('v', 2),
          type: 'custom',
          name: 'x',
          at: now - 3 * 3_600_000,
        },
        { user: null, session: uid('v', 3), type: 'page_view', path: '/', at: now - 60_000 },
      ]);
      const hour = await get('/api/analytics/active-users?hours=1').expect(200);
      expect(hour.body).toEqual({ active_users: baseHour + 2, hours: 1 });
      const four = await get('/api/analytics/active-users?hours=4').expect(200);
      expect(four.body.active_users).toBe(baseFour + 3);
      const realtime = await get('/api/analytics/realtime').expect(200);
      expect(realtime.body.active_users).toBe(baseNow + 2);
      expect(realtime.body.events_per_minute).toHaveLength(30);
      // Thirty consecutive minutes, the current one last.
      const minutes = realtime.body.events_per_minute.map((m: { minute: string }) =>
        Date.parse(m.minute),
      );
      const current = Math.floor(Date.now() / 60_000) * 60_000;
      expect(minutes).toEqual(Array.from({ length: 30 }, (_, i) => current - (29 - i) * 60_000));
      const total = realtime.body.events_per_minute.reduce(
        (sum: number, m: { events: number }) => sum + m.events,
        0,
      );
      expect(total).toBeGreaterThanOrEqual(2);
    });

    it('counts each minute of the realtime view whole (events at different milliseconds of one minute)', async () => {
      type Minute = { minute: string; events: number };
      const minuteOf = async (at: number) =>
        (
          (await get('/api/analytics/realtime').expect(200)).body.events_per_minute as Minute[]
        ).find((m) => m.minute === new Date(at).toISOString())!.events;
      const tenMinutesAgo = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
      const before = [await minuteOf(tenMinutesAgo), await minuteOf(tenMinutesAgo + 60_000)];
      await insertEvents(
        t,
        [5_000, 6_001, 59_999].map((offset, i) => ({
          user: uid('rt', i),
          session: uid('rs', i),
          type: 'custom' as const,
          name: 'x',
          at: tenMinutesAgo + offset,
        })),
      );
      expect([await minuteOf(tenMinutesAgo), await minuteOf(tenMinutesAgo + 60_000)]).toEqual([
        before[0] + 3,
        before[1],
      ]);
    });

    it('validates hours', async () => {
      for (const hours of ['0', 'abc', '1.5']) {
        const res = await get(`/api/analytics/active-users?hours=${hours}`).expect(400);
        expect([hours, res.body.details.map((d: { field: string }) => d.field)]).toEqual([
          hours,
          ['hours'],
        ]);
      }
    });
  });

  describe('GET /api/analytics/features', () => {
    it('measures adoption, events and first-time users', async () => {
      await insertEvents(t, [
        {
          user: uid('f', 1),
          session: uid('g', 1),
          type: 'action',
          name: 'export.csv',
          at: '2026-05-20T10:00:00Z',
        },
        {
          user: uid('f', 1),
          session: uid('g', 2),
          type: 'action',
          name: 'export.pdf',
          at: '2026-06-02T10:00:00Z',
        },
        {
          user: uid('f', 2),
          session: uid('g', 3),
          type: 'action',
          name: 'export.csv',
          at: '2026-06-03T10:00:00Z',
        },
        {
          user: uid('f', 3),
          session: uid('g', 4),
          type: 'action',
          name: 'share.link',
          at: '2026-06-04T10:00:00Z',
        },
        {
          user: uid('f', 4),
          session: uid('g', 5),
          type: 'page_view',
          path: '/',
          at: '2026-06-05T10:00:00Z',
        },
      ]);
      const res = await get(
        '/api/analytics/features?features=export,share&from=2026-06-01T00:00:00Z&to=2026-06-08T00:00:00Z',
      ).expect(200);
      expect(res.body).toEqual({
        active_users: 4,
        items: [
          {
            feature: 'export',
            actions: ['export.csv', 'export.pdf'],
            users: 2,
            adoption_rate: 0.5,
            events: 2,
            first_time_users: 1,
          },
          {
            feature: 'share',
            actions: null,
            users: 1,
            adoption_rate: 0.25,
            events: 1,
            first_time_users: 1,
          },
        ],
      });
    });

    it('matches `<name>` and `<name>.*` exactly: case, look-alike prefixes and neighbours stay out', async () => {
      const names = ['zip', 'zip.a', 'zipper.b', 'zip/c', 'Zip.d', 'zip-e'];
      await insertEvents(
        t,
        names.map((name, i) => ({
          user: uid('z', i + 1),
          session: uid('y', i + 1),
          type: 'action',
          name,
          at: `2026-07-10T10:0${i}:00Z`,
        })),
      );
      const res = await get(
        '/api/analytics/features?features=zip&from=2026-07-10T00:00:00Z&to=2026-07-11T00:00:00Z',
      ).expect(200);
      expect(res.body).toEqual({
        active_users: 6,
        items: [
          {
            feature: 'zip',
            actions: null,
            users: 2,
            adoption_rate: 2 / 6,
            events: 2,
            first_time_users: 2,
          },
        ],
      });
    });

    it('treats names of Object members (constructor, __proto__, toString) as action names', async () => {
      await insertEvents(t, [
        {
          user: uid('o', 1),
          session: uid('p', 1),
          type: 'action',
          name: 'constructor',
          at: '2026-07-20T10:00:00Z',
        },
      ]);
      const res = await get(
        '/api/analytics/features?features=constructor,__proto__,toString&from=2026-07-20T00:00:00Z&to=2026-07-21T00:00:00Z',
      ).expect(200);
      expect(res.body.items).toEqual([
        ...['constructor', '__proto__', 'toString'].map((feature) => ({
          feature,
          actions: null,
          users: feature === 'constructor' ? 1 : 0,
          adoption_rate: feature === 'constructor' ? 1 : 0,
          events: feature === 'constructor' ? 1 : 0,
          first_time_users: feature === 'constructor' ? 1 : 0,
        })),
      ]);
    });

    it('requires valid feature names', async () => {
      for (const query of ['', '?features=a b', '?features=ok,']) {
        const res = await get(`/api/analytics/features${query}`).expect(400);
        expect([query, res.body.details.map((d: { field: string }) => d.field)]).toEqual([
          query,
          ['features'],
        ]);
      }
    });
  });

  describe('reports', () => {
    it('serves the system report as JSON', async () => {
      const res = await get(`/api/analytics/report?${A_RANGE}`).expect(200);
      expect(res.body.top_pages[0]).toEqual({
        page: '/home',
        views: 4,
        visitors: 3,
        entries: 3,
        exits: 3,
        exit_rate: 0.75,
      });
      expect(res.body.sessions.count).toBe(4);
      // Taken from the overview's pass over the sessions: the same as the sessions endpoint.
      const sessions = await get(`/api/analytics/sessions?${A_RANGE}`).expect(200);
      expect(res.body.sessions).toEqual(sessions.body);
      expect(res.body.overview.events).toEqual({ value: 10, previous: 0 });
      expect(res.body.active_users).toHaveLength(7);
    });

    it('leaves api_request events out of every part with include_api=false', async () => {
      const res = await get(`/api/analytics/report?${A_RANGE}&include_api=false`).expect(200);
      expect(res.body.overview.events).toEqual({ value: 9, previous: 0 });
      const types = res.body.event_breakdown.map((i: { type: string }) => i.type);
      expect(types).toContain('page_view');
      expect(types).not.toContain('api_request');
      const series = await get(`/api/analytics/active-users/series?${A_RANGE}&include_api=false`);
      expect(res.body.active_users).toEqual(series.body.items);
      const withApi = await get(`/api/analytics/report?${A_RANGE}`).expect(200);
      expect(withApi.body.event_breakdown.map((i: { type: string }) => i.type)).toContain(
        'api_request',
      );
    });

    it('serves the system report as RFC 4180 CSV', async () => {
      const res = await get(`/api/analytics/report?${A_RANGE}&format=csv`).expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      expect(res.headers['content-disposition']).toBe(
        'attachment; filename="analytics-report.csv"',
      );
      const lines = res.text.split('\r\n');
      expect(lines[0]).toBe('section,key,metric,value');
      expect(lines).toContain('top_pages,/home,views,4');
      expect(lines).toContain('sessions,,median_s,15');
      expect(res.text.endsWith('\r\n')).toBe(true);
    });
  });
});

/**
 * The session-level figures come from the per-session rollup for sessions
 * wholly inside the range and from the events for sessions that straddle an
 * end of it: only events inside the range may count.
 */
describe('analytics over sessions that straddle the range', () => {
  const B = Date.parse('2025-06-02T00:00:00Z');
  const B_END = B + DAY;
  const B_RANGE = `from=2025-06-02T00:00:00.000Z&to=2025-06-03T00:00:00.000Z`;
  const [u3, u4, u5] = [uid('b', 3), uid('b', 4), uid('b', 5)];
  const [s5, s6, s7, s8] = [uid('t', 5), uid('t', 6), uid('t', 7), uid('t', 8)];
  let t: TestApp;
  let admin: LoggedIn;
  const get = (path: string) => t.http().get(path).set('authorization', admin.bearer);

  beforeAll(async () => {
    t = await startTestApp(ADMIN_ENV);
    admin = await loginAdmin(t);
    await insertEvents(t, [
      // s5 starts before the range: in it, /b -> action -> /c, 40 s
      { user: u3, session: s5, type: 'page_view', path: '/a', at: B - 60 * S },
      { user: u3, session: s5, type: 'page_view', path: '/b', at: B + 10 * S },
      { user: u3, session: s5, type: 'action', name: 'straddle.check', at: B + 20 * S },
      { user: u3, session: s5, type: 'page_view', path: '/c', at: B + 50 * S },
      // s6 ends exactly at the end of the range (excluded): in it, one page view (bounce)
      { user: u4, session: s6, type: 'page_view', path: '/b', at: B_END - 30 * S },
      { user: u4, session: s6, type: 'page_view', path: '/d', at: B_END },
      // s7 spans the range with no event in it: not a session of the range
      { user: u3, session: s7, type: 'page_view', path: '/a', at: B - 100 * S },
      { user: u3, session: s7, type: 'page_view', path: '/a', at: B_END + 100 * S },
      // s8 starts exactly at the start of the range: wholly inside, /c -> /b, 100 s
      { user: u5, session: s8, type: 'page_view', path: '/c', at: B },
      { user: u5, session: s8, type: 'page_view', path: '/b', at: B + 100 * S },
    ]);
  });
  afterAll(async () => {
    await t.close();
  });

  it('measures durations and bounces over the events in the range only', async () => {
    const res = await get(`/api/analytics/sessions?${B_RANGE}`).expect(200);
    // durations: s5 40 s, s6 0, s8 100 s
    expect(res.body).toEqual({
      count: 3,
      mean_s: 46.667,
      median_s: 40,
      p90_s: 100,
      share_zero: 1 / 3,
      bounce_rate: 1 / 3,
    });
  });

  it('takes entry and exit pages from the first and last page views in the range', async () => {
    const res = await get(`/api/analytics/pages?${B_RANGE}`).expect(200);
    expect(res.body.items).toEqual([
      { page: '/b', views: 3, visitors: 3, entries: 2, exits: 2, exit_rate: 2 / 3 },
      { page: '/c', views: 2, visitors: 2, entries: 1, exits: 1, exit_rate: 0.5 },
    ]);
  });

  it('breaks down only the events in the range', async () => {
    const res = await get(`/api/analytics/events?${B_RANGE}`).expect(200);
    expect(res.body.items).toEqual([
      { type: 'page_view', name: null, events: 5, actors: 3, sessions: 3 },
      { type: 'action', name: null, events: 1, actors: 1, sessions: 1 },
      { type: 'action', name: 'straddle.check', events: 1, actors: 1, sessions: 1 },
    ]);
  });

  it('counts a session that crosses midnight as active on both days', async () => {
    const res = await get(
      '/api/analytics/active-users/series?from=2025-06-01T00:00:00Z&to=2025-06-03T00:00:00Z',
    ).expect(200);
    // u3 is active on June 2 only through s5, which started on June 1.
    expect(res.body.items).toEqual([
      { date: '2025-06-01', dau: 1, wau: 1, mau: 1, stickiness: 1 },
      { date: '2025-06-02', dau: 3, wau: 3, mau: 3, stickiness: 1 },
    ]);
  });

  it('builds default retention (any event) from first-ever sessions and week-crossing ones', async () => {
    const res = await t
      .http()
      .post('/api/analytics/retention')
      .set('authorization', admin.bearer)
      .send({
        period: 'week',
        periods: 2,
        from: '2025-05-26T00:00:00Z',
        to: '2025-06-09T00:00:00Z',
      })
      .expect(200);
    // u3 starts on Sunday June 1 (s7) and comes back on June 2 only within s5 and s7, which
    // both cross into that week; u4 and u5 start in the week of June 2 and never return.
    expect(res.body.cohorts).toEqual([
      {
        cohort: '2025-05-26',
        start: '2025-05-26T00:00:00.000Z',
        size: 1,
        retained: [1, 0],
        rates: [1, 0],
      },
      {
        cohort: '2025-06-02',
        start: '2025-06-02T00:00:00.000Z',
        size: 2,
        retained: [0, 0],
        rates: [0, 0],
      },
    ]);
  });

  it('finds local days across a DST change (a 23-hour day in the lookback)', async () => {
    // 21:30Z is 23:30 on March 30 in Berlin (CEST from 02:00 that day), 22:30Z is 00:30 on March 31.
    await insertEvents(t, [
      {
        user: uid('b', 6),
        session: uid('t', 9),
        type: 'page_view',
        path: '/late',
        at: '2025-03-30T21:30:00Z',
      },
      {
        user: uid('b', 6),
        session: uid('t', 9),
        type: 'page_view',
        path: '/later',
        at: '2025-03-30T22:30:00Z',
      },
    ]);
    const res = await get(
      '/api/analytics/active-users/series?from=2025-03-29T23:00:00Z&to=2025-03-31T22:00:00Z&tz=Europe/Berlin',
    ).expect(200);
    expect(res.body.items).toEqual([
      { date: '2025-03-30', dau: 1, wau: 1, mau: 1, stickiness: 1 },
      { date: '2025-03-31', dau: 1, wau: 1, mau: 1, stickiness: 1 },
    ]);
  });

  it('counts days where a daylight-saving change skips midnight from their real start', async () => {
    // America/Santiago: 2026-09-06 starts at 01:00 (04:00Z); the 7th and 8th at 00:00 (03:00Z).
    // One actor at 00:30 on the 8th (03:30Z), the other at 00:30 on the 7th (03:30Z).
    await insertEvents(t, [
      {
        user: uid('dsa', 1),
        session: uid('dsb', 1),
        type: 'custom',
        name: 'x',
        at: '2026-09-08T03:30:00Z',
      },
      {
        user: uid('dsa', 2),
        session: uid('dsb', 2),
        type: 'custom',
        name: 'x',
        at: '2026-09-07T03:30:00Z',
      },
    ]);
    const range = 'from=2026-09-05T04:00:00Z&to=2026-09-09T03:00:00Z&tz=America/Santiago';
    for (const includeApi of [true, false]) {
      const res = await get(
        `/api/analytics/active-users/series?${range}&include_api=${includeApi}`,
      ).expect(200);
      expect([
        includeApi,
        res.body.items.map((d: { date: string; dau: number; wau: number }) => [
          d.date,
          d.dau,
          d.wau,
        ]),
      ]).toEqual([
        includeApi,
        [
          ['2026-09-05', 0, 0],
          ['2026-09-06', 0, 0],
          ['2026-09-07', 1, 1],
          ['2026-09-08', 1, 2],
        ],
      ]);
    }
  });

  it('leaves api_request out of durations and active users with include_api=false', async () => {
    // s10: a page view, then an API call 300 s later; s11: only an API call (u8's only event).
    const C = Date.parse('2025-07-07T10:00:00Z');
    const C_RANGE = 'from=2025-07-07T00:00:00.000Z&to=2025-07-08T00:00:00.000Z';
    await insertEvents(t, [
      { user: uid('b', 7), session: uid('t', 10), type: 'page_view', path: '/solo', at: C },
      {
        user: uid('b', 7),
        session: uid('t', 10),
        type: 'api_request',
        name: 'GET /x',
        at: C + 300 * S,
      },
      {
        user: uid('b', 8),
        session: uid('t', 11),
        type: 'api_request',
        name: 'GET /x',
        at: C + 60 * S,
      },
    ]);
    const all = await get(`/api/analytics/sessions?${C_RANGE}`).expect(200);
    expect(all.body).toEqual({
      count: 2,
      mean_s: 150,
      median_s: 150,
      p90_s: 300,
      share_zero: 0.5,
      bounce_rate: 1,
    });
    const noApi = await get(`/api/analytics/sessions?${C_RANGE}&include_api=false`).expect(200);
    expect(noApi.body).toEqual({
      count: 1,
      mean_s: 0,
      median_s: 0,
      p90_s: 0,
      share_zero: 1,
      bounce_rate: 1,
    });
    const series = `/api/analytics/active-users/series?${C_RANGE}`;
    expect((await get(series).expect(200)).body.items).toEqual([
      { date: '2025-07-07', dau: 2, wau: 2, mau: 2, stickiness: 1 },
    ]);
    expect((await get(`${series}&include_api=false`).expect(200)).body.items).toEqual([
      { date: '2025-07-07', dau: 1, wau: 1, mau: 1, stickiness: 1 },
    ]);
  });

  it('splits the overview at the start of the range', async () => {
    const res = await get(`/api/analytics/overview?${B_RANGE}`).expect(200);
    expect(res.body.metrics).toEqual({
      events: { value: 6, previous: 2 },
      page_views: { value: 5, previous: 2 },
      active_users: { value: 3, previous: 1 },
      sessions: { value: 3, previous: 2 },
      mean_session_duration_s: { value: 46.667, previous: 0 },
      median_session_duration_s: { value: 40, previous: 0 },
      bounce_rate: { value: 1 / 3, previous: 1 },
    });
  });
});

describe('analytics of one user', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('summarises the caller with the seed fields, stitched anonymous events included', async () => {
    const anon = await t.http().post('/api/track/page').send({ page: '/landing' }).expect(200);
    await t
      .http()
      .post('/auth/register')
      .send({ username: 'meme', password: 'my password 1' })
      .expect(201);
    const login = await t
      .http()
      .post('/auth/login')
      .set('x-session-id', anon.body.session_id)
      .send({ username: 'meme', password: 'my password 1' })
      .expect(200);
    const bearer = `Bearer ${login.body.session_id}`;
    await t
      .http()
      .post('/api/track/action')
      .set('authorization', bearer)
      .send({ action: 'do.it' })
      .expect(200);
    await t.app.get(EventWriter).drain(); // the automatic api_request events are queued
    const res = await t.http().get('/api/analytics/user').set('authorization', bearer).expect(200);
    // One api_request: the login's, made with the anonymous session that is now the user's
    // (tracking routes record no api_request events of their own).
    expect(res.body).toMatchObject({
      user_id: login.body.user_id,
      total_sessions: 1,
      event_breakdown: { page_view: 1, action: 1, login: 1, api_request: 1 },
    });
    expect(res.body.total_activities).toBe(4);
    // The exact first and last times, and the one session's duration, from the stored rows.
    const [span] = await t.dataSource.query<{ first: string; last: string }[]>(
      `SELECT MIN(occurred_at) AS first, MAX(occurred_at) AS last FROM events
       WHERE user_id = '${login.body.user_id}'`,
    );
    const [first, last] = [Number(span.first), Number(span.last)];
    expect(last).toBeGreaterThan(first);
    expect([
      res.body.first_activity,
      res.body.last_activity,
      res.body.avg_session_duration_s,
    ]).toEqual([
      new Date(first).toISOString(),
      new Date(last).toISOString(),
      (last - first) / 1000,
    ]);
  });

  it('returns the current session journey in time order, paginated to older steps', async () => {
    await t
      .http()
      .post('/auth/register')
      .send({ username: 'walker', password: 'my password 1' })
      .expect(201);
    const login = await t
      .http()
      .post('/auth/login')
      .send({ username: 'walker', password: 'my password 1' })
      .expect(200);
    const bearer = `Bearer ${login.body.session_id}`;
    for (const page of ['/a', '/b', '/c']) {
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', bearer)
        .send({ page })
        .expect(200);
    }
    const all = await t
      .http()
      .get('/api/analytics/journey')
      .set('authorization', bearer)
      .expect(200);
    expect(
      all.body.journey.map(
        (s: { event_type: string; page: string | null }) => s.page ?? s.event_type,
      ),
    ).toEqual(['login', '/a', '/b', '/c']);
    expect(all.body.steps).toBe(4);
    const latest = await t
      .http()
      .get('/api/analytics/journey?limit=2')
      .set('authorization', bearer)
      .expect(200);
    expect(latest.body.journey.map((s: { page: string }) => s.page)).toEqual(['/b', '/c']);
    const older = await t
      .http()
      .get(`/api/analytics/journey?limit=2&cursor=${latest.body.next_cursor}`)
      .set('authorization', bearer)
      .expect(200);
    expect(
      older.body.journey.map(
        (s: { event_type: string; page: string | null }) => s.page ?? s.event_type,
      ),
    ).toEqual(['login', '/a']);
    expect(older.body.next_cursor).toBeNull();
    // Another user's session, with events in it, is not the caller's to read.
    const stranger = await registerAndLogin(t, 'walker-stranger');
    await t
      .http()
      .post('/api/track/page')
      .set('authorization', stranger.bearer)
      .send({ page: '/stranger-secret' })
      .expect(200);
    const other = await t
      .http()
      .get(`/api/analytics/journey?session_id=${stranger.sessionId}`)
      .set('authorization', bearer)
      .expect(200);
    expect(other.body).toEqual({ journey: [], steps: 0, next_cursor: null });
    const own = await t
      .http()
      .get(`/api/analytics/journey?session_id=${stranger.sessionId}`)
      .set('authorization', stranger.bearer)
      .expect(200);
    expect(own.body.journey.map((s: { page: string | null }) => s.page)).toEqual([
      null,
      '/stranger-secret',
    ]);
  });

  it('returns the journey of a time range across the caller’s sessions', async () => {
    await register(t, 'ranger');
    const bearers = [(await login(t, 'ranger')).bearer, (await login(t, 'ranger')).bearer];
    const hour = 3_600_000;
    const now = Date.now();
    const at = (ms: number) => new Date(now - ms).toISOString();
    for (const [bearer, page, ago] of [
      [bearers[0], '/too-old', 30 * hour],
      [bearers[0], '/first', 3 * hour],
      [bearers[1], '/second', 2 * hour],
    ] as const) {
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', bearer)
        .send({ events: [{ type: 'page_view', page, occurred_at: at(ago) }] })
        .expect(200);
      expect(res.body.accepted).toBe(1);
    }
    // From 4 hours to 1 hour ago: both sessions' page views, not the older one, not the logins.
    const res = await t
      .http()
      .get(`/api/analytics/journey?from=${at(4 * hour)}&to=${at(hour)}`)
      .set('authorization', bearers[1])
      .expect(200);
    expect(res.body.journey.map((s: { page: string }) => s.page)).toEqual(['/first', '/second']);
    expect(res.body.journey[0].timestamp).toBe(at(3 * hour));
    expect(res.body.next_cursor).toBeNull();
  });

  it('serves the caller’s own report as JSON and CSV', async () => {
    await t
      .http()
      .post('/auth/register')
      .send({ username: 'reporter', password: 'my password 1' })
      .expect(201);
    const login = await t
      .http()
      .post('/auth/login')
      .send({ username: 'reporter', password: 'my password 1' })
      .expect(200);
    const bearer = `Bearer ${login.body.session_id}`;
    await t
      .http()
      .post('/api/track/page')
      .set('authorization', bearer)
      .send({ page: '/x,y"z' })
      .expect(200);
    await t
      .http()
      .post('/api/track/action')
      .set('authorization', bearer)
      .send({ action: '-2-3' })
      .expect(200);
    const json = await t
      .http()
      .get('/api/analytics/user/report')
      .set('authorization', bearer)
      .expect(200);
    expect(json.body.summary.total_activities).toBe(3);
    const csv = await t
      .http()
      .get('/api/analytics/user/report?format=csv')
      .set('authorization', bearer)
      .expect(200);
    expect(csv.headers['content-disposition']).toMatch(/^attachment;/);
    expect(csv.text.split('\r\n')[0]).toBe('section,key,metric,value');
    expect(csv.text).toContain('summary,,total_activities,3');
    expect(csv.text).toContain('"/x,y%22z"');
    // Not a formula in a spreadsheet: the action name -2-3 gets a leading quote.
    expect(csv.text).toMatch(/,action,'-2-3\r\n/);
    expect(csv.text).not.toMatch(/,-2-3/);
  });
});

describe('the analytics reader', () => {
  /** Long enough (hundreds of ms) that the fast queries are done well before it. */
  const SLOW = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000)
    SELECT COUNT(*) AS n FROM c`;
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('gives a waiting query to the first reader free, not to one busy with a long query', async () => {
    const reader = t.app.get(AnalyticsReader);
    const finished: string[] = [];
    const run = (name: string, sql: string) =>
      reader.query(sql, []).then(() => finished.push(name));
    await Promise.all([
      run('slow', SLOW),
      run('fast-1', 'SELECT 1 AS n'),
      run('fast-2', 'SELECT 2 AS n'),
      run('fast-3', 'SELECT 3 AS n'),
    ]);
    // The fast ones in any order (PostgreSQL's pool runs them at once), all before the slow one.
    expect(finished.slice(0, 3).sort()).toEqual(['fast-1', 'fast-2', 'fast-3']);
    expect(finished[3]).toBe('slow');
  });

  describe('with ANALYTICS_QUERY_TIMEOUT_S', () => {
    /** Minutes on either database, were it not stopped. */
    const ENDLESS = SLOW.replace('2000000', '2000000000');
    let timed: TestApp;
    beforeAll(async () => {
      // One connection in the main pool: a session check must not need the analytics' ones.
      timed = await startTestApp({
        ...ADMIN_ENV,
        ANALYTICS_QUERY_TIMEOUT_S: '1',
        DB_POOL_MAX: '1',
      });
    });
    afterAll(async () => {
      await timed.close();
    });

    it('stops a query past its time with 503, and answers the next one', async () => {
      const reader = timed.app.get(AnalyticsReader);
      const started = Date.now();
      await expect(reader.query(ENDLESS, [])).rejects.toThrow(new AnalyticsTimeoutException(1000));
      expect(Date.now() - started).toBeLessThan(10_000); // stopped, not finished
      expect(await reader.query('SELECT 42 AS n', [])).toEqual([{ n: 42 }]);
      // Through HTTP: the error in the usual shape.
      const admin = await loginAdmin(timed);
      const spy = jest
        .spyOn(reader, 'query')
        .mockRejectedValue(new AnalyticsTimeoutException(1000));
      try {
        const res = await timed
          .http()
          .get('/api/analytics/overview')
          .set('authorization', admin.bearer)
          .expect(503);
        expect(res.body).toMatchObject({
          status_code: 503,
          error: 'Service Unavailable',
          message:
            'The analytics query ran longer than 1 s (ANALYTICS_QUERY_TIMEOUT_S) and was stopped: ask about a shorter range or fewer steps',
        });
      } finally {
        spy.mockRestore();
      }
    });

    it('keeps session checks answering while heavy queries take every analytics slot', async () => {
      const user = await registerAndLogin(timed, 'checked-meanwhile');
      const reader = timed.app.get(AnalyticsReader);
      let settled = 0;
      const heavy = [1, 2, 3].map(() =>
        reader.query(ENDLESS, []).then(
          () => settled++,
          () => settled++,
        ),
      );
      for (let i = 0; i < 3; i++) {
        await timed.http().get('/api/session').set('authorization', user.bearer).expect(200);
      }
      expect(settled).toBe(0); // answered while all three were still running or waiting
      await Promise.all(heavy);
    });
  });

  if (TEST_DB_TYPE === 'sqlite') {
    it('fails the query of a reader process that died, and runs the waiting ones on a new one', async () => {
      const reader = t.app.get(AnalyticsReader);
      // Internals: the process to kill.
      const slots = (reader as unknown as { slots: { reader: ChildProcess }[] }).slots;
      await Promise.all([reader.query('SELECT 1', []), reader.query('SELECT 1', [])]);
      expect(slots).toHaveLength(2);
      const [first] = slots;
      const stopped = reader.query(SLOW, []);
      const other = reader.query(SLOW.replace('2000000', '8000000'), []);
      const waiting = reader.query('SELECT 42 AS n', []);
      first.reader.kill('SIGKILL');
      await expect(stopped).rejects.toThrow('The analytics reader process stopped');
      expect(await waiting).toEqual([{ n: 42 }]);
      expect(slots).toHaveLength(2);
      expect(slots).not.toContain(first);
      expect(await other).toEqual([{ n: 8_000_000 }]);
    });

    it('ends a reader process, even mid-query, when the service was killed', async () => {
      // A service (here a stand-in) forks a reader, hands it a query of minutes, and dies by
      // SIGKILL: nothing closes the channel or stops the query for it.
      const entry = path.join(__dirname, '../dist/modules/analytics/analytics-reader.process.js');
      const service = spawn(
        process.execPath,
        [
          '-e',
          `const reader = require('node:child_process').fork(process.argv[1], [process.argv[2], '0'], {
             serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
           reader.send({ sql: process.argv[3], params: [] });
           console.log(reader.pid);
           setInterval(() => {}, 1000);`,
          entry,
          t.app.get(AppConfig).database.path,
          SLOW.replace('2000000', '2000000000'),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const [line] = (await once(service.stdout, 'data')) as [Buffer];
      const readerPid = Number(line.toString().trim());
      // Running, as opposed to ended: a killed orphan stays a zombie until its new parent (PID 1
      // of the machine or container) collects it, which took 1.5 s and more here; kill(pid, 0)
      // still reaches a zombie.
      const alive = () => {
        try {
          process.kill(readerPid, 0);
        } catch {
          return false;
        }
        if (!existsSync('/proc/self/stat')) return true; // no procfs: a zombie counts as running
        try {
          const stat = readFileSync(`/proc/${readerPid}/stat`, 'utf8');
          return stat[stat.lastIndexOf(')') + 2] !== 'Z'; // the state follows the command name
        } catch {
          return false; // collected meanwhile
        }
      };
      await sleep(300); // the query runs
      expect(alive()).toBe(true);
      service.kill('SIGKILL');
      for (let i = 0; i < 40 && alive(); i++) await sleep(50);
      const survived = alive();
      if (survived) process.kill(readerPid, 'SIGKILL');
      expect(survived).toBe(false);
    });

    it('stops a query still running at shutdown after half of SHUTDOWN_TIMEOUT_MS (503)', async () => {
      // The query's own limit is 30 s (the default), the shutdown's 1 s.
      const app = await startTestApp({ ...ADMIN_ENV, SHUTDOWN_TIMEOUT_MS: '1000' });
      const admin = await loginAdmin(app);
      const reader = app.app.get(AnalyticsReader);
      const slots = (reader as unknown as { slots: { running: unknown }[] }).slots;
      // The request's query would run for minutes.
      const query = reader.query.bind(reader);
      jest
        .spyOn(reader, 'query')
        .mockImplementation(() => query(SLOW.replace('2000000', '2000000000'), []));
      const inFlight = Promise.resolve(
        app.http().get('/api/analytics/realtime').set('authorization', admin.bearer),
      );
      for (let i = 0; i < 200 && !slots.some((slot) => slot.running); i++) await sleep(10);
      expect(slots.some((slot) => slot.running)).toBe(true);
      // The shutdown waits for the request: it ends once the query is stopped.
      await app.close();
      const res = await inFlight;
      expect([res.status, res.body.message]).toEqual([
        503,
        new AnalyticsShutdownException().message,
      ]);
    });

    it('refuses the queries still waiting for a reader at shutdown, and starts no reader for them', async () => {
      const app = await startTestApp();
      const reader = app.app.get(AnalyticsReader);
      const slots = (reader as unknown as { slots: unknown[] }).slots;
      const running = [reader.query(SLOW, []), reader.query(SLOW, [])];
      const waiting = reader.query('SELECT 42 AS n', []);
      const settled = Promise.allSettled([...running, waiting]);
      await app.close();
      const [first, second, third] = await settled;
      const outcome = (result: PromiseSettledResult<unknown>) =>
        result.status === 'rejected' ? (result.reason as Error).message : result.value;
      expect(outcome(third)).toBe('The analytics reader stopped');
      // The running ones end with their readers, or finish first.
      for (const result of [first, second]) {
        expect([[{ n: 2_000_000 }], 'The analytics reader process stopped']).toContainEqual(
          outcome(result),
        );
      }
      expect(slots).toEqual([]);
    });
  }
});
