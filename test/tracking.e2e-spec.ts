import { Logger } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DatabaseService } from '../src/common/database/database.service';
import { EventWriter } from '../src/modules/tracking/event-writer';
import { LiveEventStream } from '../src/modules/tracking/live-stream.service';
import { TrackingService } from '../src/modules/tracking/tracking.service';
import type { EventRow } from '../src/modules/tracking/event-row';
import type { SqliteWriterThread } from '../src/modules/tracking/sqlite-writer-thread';
import {
  ADMIN_ENV,
  login,
  loginAdmin,
  PASSWORD,
  register,
  registerAndLogin,
  sleep,
} from './support/auth';
import { eventually } from './support/eventually';
import { ProbeModule } from './support/probe.module';
import { startInstances, startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

const drain = (t: TestApp) => t.app.get(EventWriter).drain();
const eventsOf = (t: TestApp, where: string) =>
  t.dataSource.query(`SELECT * FROM events WHERE ${where} ORDER BY occurred_at, id`);

/**
 * Opens the live stream of `app` as `bearer` (the app listens on a free port
 * first). `text()` is what arrived so far and `data()` the events' payloads;
 * `ended` resolves with the whole text once the server ends the stream.
 */
async function openStream(app: TestApp['app'], bearer: string, path = '/api/track/stream') {
  if (!app.getHttpServer().address()) await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.getHttpServer().address() as AddressInfo;
  const request = http.get({ host: '127.0.0.1', port, path, headers: { authorization: bearer } });
  const response = await new Promise<http.IncomingMessage>((resolve) =>
    request.on('response', resolve),
  );
  let text = '';
  response.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const ended = new Promise<string>((resolve) => response.on('end', () => resolve(text)));
  return {
    response,
    ended,
    text: () => text,
    data: () =>
      text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>),
    /** Waits until `needle` arrived or `ms` passed. */
    waitFor: async (needle: string, ms: number) => {
      const started = Date.now();
      while (!text.includes(needle) && Date.now() - started < ms) await sleep(20);
    },
    close: () => request.destroy(),
  };
}

describe('tracking', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(ADMIN_ENV, [ProbeModule]);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('POST /api/track/page', () => {
    /** Posts a page view that must be refused: 400, and no page view stored. */
    const refusedPageView = async (body: object) => {
      const s = await login(t, 'pager');
      const before = await eventsOf(t, "type = 'page_view'");
      const res = await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send(body)
        .expect(400);
      expect(await eventsOf(t, "type = 'page_view'")).toHaveLength(before.length);
      return res;
    };

    it('stores a page view with a normalised path and answers after commit', async () => {
      const s = await registerAndLogin(t, 'pager');
      const res = await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .set('user-agent', 'test-agent/1.0')
        .send({
          page: '/pricing/?plan=pro',
          title: 'Pricing',
          referrer: 'https://news.example/item?id=1',
          properties: { ab: 'B' },
        })
        .expect(200);
      expect(res.body).toEqual({
        status: 'success',
        message: 'Page view tracked',
        event_id: expect.any(String),
        stored: true,
      });
      // No drain: the answer came after the commit.
      const [row] = await eventsOf(t, `event_id = '${res.body.event_id}'`);
      expect(row).toMatchObject({
        type: 'page_view',
        path: '/pricing',
        user_id: s.userId,
        session_id: s.sessionId,
        user_agent: 'test-agent/1.0',
        name: null,
      });
      expect(JSON.parse(row.properties)).toEqual({
        ab: 'B',
        title: 'Pricing',
        referrer: 'https://news.example/item',
      });
      expect(row.ip).toMatch(/\.0$|::$/); // anonymised
      expect(Number(row.received_at)).toBe(Number(row.occurred_at));
    });

    it.each([
      ['a missing page', {}, 'page'],
      ['an empty page', { page: '' }, 'page'],
      ['a page over 2048 characters', { page: '/x'.repeat(1100) }, 'page'],
      [
        'properties 6 levels deep',
        { page: '/x', properties: { a: { b: { c: { d: { e: { f: 1 } } } } } } },
        'properties',
      ],
      [
        'properties over 8 KB',
        { page: '/x', properties: { blob: 'x'.repeat(8200) } },
        'properties',
      ],
      [
        'properties that are an array',
        { page: '/x', properties: ['not', 'an', 'object'] },
        'properties',
      ],
      ['an unknown field', { page: '/x', extra: 1 }, 'extra'],
      ['a null title', { page: '/x', title: null }, 'title'],
      ['a null referrer (once a 500)', { page: '/x', referrer: null }, 'referrer'],
      ['null properties', { page: '/x', properties: null }, 'properties'],
    ])('rejects %s with 400 naming the field and stores nothing', async (_label, body, field) => {
      const res = await refusedPageView(body);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
    });

    it.each(['mailto:alice@example.com', 'javascript:alert(1)', '   '])(
      'rejects the page %j (not a web page) with 400 and stores nothing',
      async (page) => {
        const res = await refusedPageView({ page });
        expect(res.body.message).toBe(
          'page must be a path or an http(s) URL, its path at most 2048 characters once percent-encoded',
        );
      },
    );

    it('rejects a page whose path is too long only once percent-encoded, saying so', async () => {
      // 1,001 characters as sent, 6,001 once each é is %C3%A9.
      const res = await refusedPageView({ page: `/${'é'.repeat(1000)}` });
      expect(res.body.message).toBe(
        'page must be a path or an http(s) URL, its path at most 2048 characters once percent-encoded',
      );
    });

    it('stores a referrer of another scheme as null, never its address', async () => {
      const s = await login(t, 'pager');
      const res = await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/contact', referrer: 'mailto:alice@example.com' })
        .expect(200);
      const [row] = await eventsOf(t, `event_id = '${res.body.event_id}'`);
      expect(JSON.parse(row.properties)).toEqual({ referrer: null });
    });
  });

  describe('POST /api/track/action', () => {
    it('stores the real action name, details and feature', async () => {
      const s = await registerAndLogin(t, 'actor');
      const res = await t
        .http()
        .post('/api/track/action')
        .set('authorization', s.bearer)
        .send({ action: 'checkout.submit', details: { button: 'submit' }, feature: 'checkout' })
        .expect(200);
      expect(res.body.message).toBe('Action tracked');
      const [row] = await eventsOf(t, `event_id = '${res.body.event_id}'`);
      expect(row).toMatchObject({ type: 'action', name: 'checkout.submit', path: null });
      expect(JSON.parse(row.properties)).toEqual({ button: 'submit', feature: 'checkout' });
    });

    it.each([
      ['a missing action', {}, 'action'],
      ['an action with a space', { action: 'has space' }, 'action'],
      ['an action over 128 characters', { action: 'x'.repeat(129) }, 'action'],
      ['a bad feature name', { action: 'ok', feature: 'bad feature' }, 'feature'],
    ])('rejects %s with 400, storing nothing', async (_label, body, field) => {
      const s = await login(t, 'actor');
      const before = await eventsOf(t, "type = 'action'");
      const res = await t
        .http()
        .post('/api/track/action')
        .set('authorization', s.bearer)
        .send(body)
        .expect(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toEqual([field]);
      expect(await eventsOf(t, "type = 'action'")).toHaveLength(before.length);
    });
  });

  describe('POST /api/track/events', () => {
    it('accepts the valid events, rejects the bad ones by index, and dedupes resends', async () => {
      const s = await registerAndLogin(t, 'batcher');
      const now = Date.now();
      const events = [
        { event_id: 'e-1', type: 'page_view', page: '/a' },
        { event_id: 'e-2', type: 'action', name: 'share.click', properties: { to: 'mail' } },
        { event_id: 'e-3', type: 'action' }, // no name
        { event_id: 'e-4', type: 'api_request', name: 'x' }, // server-only type
        {
          event_id: 'e-5',
          type: 'custom',
          name: 'video.play',
          occurred_at: new Date(now - 3_600_000).toISOString(),
        },
        {
          event_id: 'e-6',
          type: 'custom',
          name: 'old',
          occurred_at: new Date(now - 8 * 86_400_000).toISOString(),
        },
        {
          event_id: 'e-7',
          type: 'error',
          name: 'js.TypeError',
          occurred_at: new Date(now + 600_000).toISOString(),
        },
        'not an object',
        { event_id: 'e-9', type: 'page_view', page: '/b', surprise: true },
        { event_id: 'e-1', type: 'page_view', page: '/a' }, // repeated within the batch
      ];
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({ events })
        .expect(200);
      expect(res.body.accepted).toBe(3);
      expect(res.body.duplicates).toBe(1);
      expect(res.body.skipped).toBe(0);
      expect(res.body.rejected.map((r: { index: number }) => r.index)).toEqual([2, 3, 5, 6, 7, 8]);
      expect(res.body.rejected[0].reason).toBe('name is required for action events');
      expect(res.body.rejected[1].reason).toMatch(/type must be one of/);
      expect(res.body.rejected[2].reason).toMatch(/occurred_at must be within the last 7 days/);
      expect(res.body.rejected[4].reason).toBe('an event must be a JSON object');
      expect(res.body.rejected[5].reason).toMatch(/surprise should not exist/);

      const rows = await eventsOf(t, `user_id = '${s.userId}' AND type <> 'login'`);
      expect(rows.map((r: { event_id: string }) => r.event_id).sort()).toEqual([
        'e-1',
        'e-2',
        'e-5',
      ]);
      const played = rows.find((r: { event_id: string }) => r.event_id === 'e-5');
      expect(Math.abs(Number(played.occurred_at) - (now - 3_600_000))).toBeLessThan(1000);

      const again = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({ events: events.slice(0, 2) })
        .expect(200);
      expect(again.body).toEqual({ accepted: 0, duplicates: 2, skipped: 0, rejected: [] });
      expect(await eventsOf(t, `user_id = '${s.userId}' AND type <> 'login'`)).toHaveLength(3);
    });

    it('keeps the normalised page of any event type, and rejects a bad one on any type', async () => {
      const s = await registerAndLogin(t, 'page-keeper');
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({
          events: [
            { event_id: 'err', type: 'error', name: 'js.TypeError', page: '/checkout?card=1' },
            { event_id: 'act', type: 'action', name: 'buy', page: 'https://shop.example/cart/' },
            { event_id: 'cus', type: 'custom', name: 'no.page' },
            { event_id: 'bad', type: 'action', name: 'buy', page: 'mailto:a@example.com' },
          ],
        })
        .expect(200);
      expect(res.body.accepted).toBe(3);
      expect(res.body.rejected).toEqual([
        {
          index: 3,
          reason:
            'page must be a path or an http(s) URL, its path at most 2048 characters once percent-encoded',
        },
      ]);
      const rows = await eventsOf(t, `user_id = '${s.userId}' AND type <> 'login'`);
      expect(
        Object.fromEntries(
          rows.map((r: { event_id: string; path: string | null }) => [r.event_id, r.path]),
        ),
      ).toEqual({ err: '/checkout', act: '/cart', cus: null });
    });

    it('rejects dates Date.parse cannot read, times without an offset and non-web pages by index, storing the rest', async () => {
      const s = await registerAndLogin(t, 'odd-dates');
      // An hour ago, without the Z: the server's time zone would decide what it means.
      const localTime = new Date(Date.now() - 3_600_000).toISOString().slice(0, 19);
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({
          events: [
            { event_id: 'ok-1', type: 'page_view', page: '/ok' },
            { event_id: 'ordinal', type: 'page_view', page: '/x', occurred_at: '2026-336' },
            { event_id: 'week', type: 'custom', name: 'w', occurred_at: '2026-W49' },
            { event_id: 'basic', type: 'custom', name: 'b', occurred_at: '20261202T191500Z' },
            { event_id: 'local', type: 'custom', name: 'l', occurred_at: localTime },
            { event_id: 'mail', type: 'page_view', page: 'mailto:alice@example.com' },
          ],
        })
        .expect(200);
      expect(res.body.accepted).toBe(1);
      expect(res.body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3, 4, 5]);
      for (const r of res.body.rejected.slice(0, 4)) {
        expect(r.reason).toMatch(/occurred_at must be an ISO 8601 date-time with a UTC offset/);
      }
      expect(res.body.rejected[4].reason).toBe(
        'page must be a path or an http(s) URL, its path at most 2048 characters once percent-encoded',
      );
      const rows = await eventsOf(t, `user_id = '${s.userId}' AND type <> 'login'`);
      expect(rows.map((r: { event_id: string }) => r.event_id)).toEqual(['ok-1']);
    });

    it.each([
      ['no events field', {}],
      ['an empty list', { events: [] }],
      ['a string', { events: 'x' }],
      [
        '1001 events',
        { events: Array.from({ length: 1001 }, () => ({ type: 'custom', name: 'n' })) },
      ],
    ])('rejects a batch with %s (400)', async (_label, body) => {
      const s = await login(t, 'batcher');
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send(body)
        .expect(400);
      expect(res.body.details[0].field).toBe('events');
    });
  });

  describe('anonymous tracking', () => {
    it('starts an anonymous session, then stitches its events to the user at login', async () => {
      await register(t, 'visitor');
      const first = await t.http().post('/api/track/page').send({ page: '/landing' }).expect(200);
      expect(first.body.session_id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const cookie = ([] as string[]).concat(first.headers['set-cookie'])[0];
      expect(cookie).toContain(`session_id=${first.body.session_id}`);
      const token = first.body.session_id as string;
      const second = await t
        .http()
        .post('/api/track/page')
        .set('x-session-id', token)
        .send({ page: '/pricing' })
        .expect(200);
      expect(second.body.session_id).toBeUndefined();
      const [anon] = await eventsOf(t, `event_id = '${first.body.event_id}'`);
      expect(anon.user_id).toBeNull();

      const s = await login(t, 'visitor', PASSWORD, { headers: { 'x-session-id': token } });
      const rows = await eventsOf(t, `session_id = '${s.sessionId}' AND type = 'page_view'`);
      expect(rows.map((r: { path: string; user_id: string }) => [r.path, r.user_id])).toEqual([
        ['/landing', s.userId],
        ['/pricing', s.userId],
      ]);
      // The login request's own api_request event belongs to the user too: nothing of the
      // session stays anonymous.
      await drain(t);
      expect(await eventsOf(t, `session_id = '${s.sessionId}' AND user_id IS NULL`)).toEqual([]);
      const [loginRequest] = await eventsOf(
        t,
        `session_id = '${s.sessionId}' AND name = 'POST /auth/login'`,
      );
      expect(loginRequest.user_id).toBe(s.userId);
      const history = await t
        .http()
        .get('/api/activities?type=page_view')
        .set('authorization', s.bearer)
        .expect(200);
      expect(history.body.items.map((i: { page: string }) => i.page)).toEqual([
        '/pricing',
        '/landing',
      ]);
    });

    it('finishes at start-up the stitching that a crash or a failure after the login left undone', async () => {
      const pending = async (sessionId: string) =>
        Boolean(
          (
            await t.dataSource.query(
              `SELECT stitch_pending FROM sessions WHERE id = '${sessionId}'`,
            )
          )[0].stitch_pending,
        );
      // A login whose stitching ran: nothing left pending.
      await register(t, 'stitched-visitor');
      const fine = await t.http().post('/api/track/page').send({ page: '/a' }).expect(200);
      const stitched = await login(t, 'stitched-visitor', PASSWORD, {
        headers: { 'x-session-id': fine.body.session_id },
      });
      expect(await pending(stitched.sessionId)).toBe(false);

      // A login whose stitching never happened (the process died after the login committed).
      await register(t, 'interrupted-visitor');
      const first = await t.http().post('/api/track/page').send({ page: '/landing' }).expect(200);
      const tracking = t.app.get(TrackingService);
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      const crash = jest.spyOn(tracking, 'stitch').mockRejectedValueOnce(new Error('killed'));
      let s: Awaited<ReturnType<typeof login>>;
      try {
        s = await login(t, 'interrupted-visitor', PASSWORD, {
          headers: { 'x-session-id': first.body.session_id },
        });
      } finally {
        crash.mockRestore();
        errors.mockRestore();
      }
      await drain(t);
      const pageViews = () =>
        eventsOf(t, `session_id = '${s.sessionId}' AND type = 'page_view'`).then((rows) =>
          rows.map((r: { user_id: string | null }) => r.user_id),
        );
      expect(await pageViews()).toEqual([null]);
      expect(await pending(s.sessionId)).toBe(true);

      await tracking.onApplicationBootstrap(); // what the next start runs
      expect(await pageViews()).toEqual([s.userId]);
      expect(await eventsOf(t, `session_id = '${s.sessionId}' AND user_id IS NULL`)).toEqual([]);
      expect(await pending(s.sessionId)).toBe(false);
      const [summary] = await t.dataSource.query(
        `SELECT user_id FROM session_summaries WHERE session_id = '${s.sessionId}'`,
      );
      expect(summary.user_id).toBe(s.userId);
    });

    it('starts an anonymous session for an action or a batch sent without one', async () => {
      for (const [path, body] of [
        ['/api/track/action', { action: 'cta.click' }],
        ['/api/track/events', { events: [{ type: 'action', name: 'cta.click' }] }],
      ] as const) {
        const res = await t.http().post(path).send(body).expect(200);
        const token = res.body.session_id as string;
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(([] as string[]).concat(res.headers['set-cookie'])[0]).toContain(
          `session_id=${token}`,
        );
        // The token works as a session, and the stored event is that session's, anonymous.
        const session = await t
          .http()
          .get('/api/session')
          .set('authorization', `Bearer ${token}`)
          .expect(200);
        expect(session.body.session.user_id).toBeNull();
        const rows = await eventsOf(t, `session_id = '${session.body.session.id}'`);
        expect(
          rows
            .filter((r: { type: string }) => r.type === 'action')
            .map((r: { name: string; user_id: string | null }) => [r.name, r.user_id]),
        ).toEqual([['cta.click', null]]);
      }
    });

    it("counts a batch resent after login as duplicates: stitching makes its event ids the user's", async () => {
      const device = await registerAndLogin(t, 'resender');
      const batch = (ids: string[]) => ({
        events: ids.map((event_id) => ({ event_id, type: 'custom', name: 'resent' })),
      });
      await t
        .http()
        .post('/api/track/events')
        .set('authorization', device.bearer)
        .send(batch(['used-elsewhere']))
        .expect(200);
      const anonymous = await t
        .http()
        .post('/api/track/events')
        .send(batch(['anon-1', 'used-elsewhere']))
        .expect(200);
      expect(anonymous.body.accepted).toBe(2);

      const token = anonymous.body.session_id as string;
      const s = await login(t, 'resender', PASSWORD, { headers: { 'x-session-id': token } });
      const again = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send(batch(['anon-1', 'used-elsewhere']))
        .expect(200);
      expect(again.body).toEqual({ accepted: 0, duplicates: 2, skipped: 0, rejected: [] });
      const rows = await eventsOf(t, `user_id = '${s.userId}' AND name = 'resent'`);
      // `used-elsewhere` was stored from both sessions before they were known to be one user's:
      // both stay (the anonymous one keeps its session-scoped key).
      expect(rows.map((r: { event_id: string }) => r.event_id).sort()).toEqual([
        'anon-1',
        'used-elsewhere',
        'used-elsewhere',
      ]);
    });

    it('deletes instead of stitching the anonymous events of a user who refused analytics', async () => {
      const owner = await registerAndLogin(t, 'private-visitor');
      await t
        .http()
        .put('/api/preferences/privacy.allow_analytics')
        .set('authorization', owner.bearer)
        .send({ value: false })
        .expect(200);
      const first = await t.http().post('/api/track/page').send({ page: '/medical/x' }).expect(200);
      const token = first.body.session_id as string;
      await drain(t);
      const [anon] = await eventsOf(t, `event_id = '${first.body.event_id}'`);
      expect(anon.user_id).toBeNull();
      const sessionId = anon.session_id as string;

      const s = await login(t, 'private-visitor', PASSWORD, { headers: { 'x-session-id': token } });
      expect(s.sessionId).toBe(sessionId); // the anonymous session was upgraded in place
      await drain(t);
      expect(await eventsOf(t, `session_id = '${sessionId}'`)).toEqual([]);
      // Deleting is the stitching's end too: nothing is left for start-up to finish.
      const [{ stitch_pending: pending }] = await t.dataSource.query(
        `SELECT stitch_pending FROM sessions WHERE id = '${sessionId}'`,
      );
      expect(Boolean(pending)).toBe(false);
      expect(
        await t.dataSource.query(
          `SELECT session_id FROM session_summaries WHERE session_id = '${sessionId}'`,
        ),
      ).toEqual([]);
      // Only the login of the first session, from before analytics were turned off, remains.
      const history = await t.http().get('/api/activities').set('authorization', s.bearer);
      expect(history.body.items.map((i: { type: string; session_id: string }) => i.type)).toEqual([
        'login',
      ]);
      expect(history.body.items[0].session_id).toBe(owner.sessionId);
    });

    it('does not store batch events from before analytics became allowed again', async () => {
      const s = await registerAndLogin(t, 'backdating-visitor');
      const consent = (granted: boolean) =>
        t
          .http()
          .post('/api/consent')
          .set('authorization', s.bearer)
          .send({ consent_type: 'analytics', granted })
          .expect(200);
      const batch = (pages: [string, number][]) =>
        t
          .http()
          .post('/api/track/events')
          .set('authorization', s.bearer)
          .send({
            events: pages.map(([page, at]) => ({
              type: 'page_view',
              page,
              occurred_at: new Date(at).toISOString(),
            })),
          })
          .expect(200);
      const before = Date.now() - 60_000;
      await consent(false);
      await sleep(20);
      const during = Date.now();
      await sleep(20);
      await consent(true);
      await sleep(20);
      const res = await batch([
        ['/before-withdrawal', before],
        ['/while-withdrawn', during],
        ['/after-grant', Date.now()],
      ]);
      // Before the withdrawal too: allowed then, but "since when without a break" is the grant.
      expect(res.body).toMatchObject({ accepted: 1, duplicates: 0, skipped: 2, rejected: [] });
      const pages = async () =>
        (await eventsOf(t, `user_id = '${s.userId}' AND type = 'page_view'`)).map(
          (r: { path: string }) => r.path,
        );
      expect(await pages()).toEqual(['/after-grant']);

      // The privacy setting: off, then on again.
      const allow = (value: boolean) =>
        t
          .http()
          .put('/api/preferences/privacy.allow_analytics')
          .set('authorization', s.bearer)
          .send({ value })
          .expect(200);
      await allow(false);
      await sleep(20);
      const switchedOff = Date.now();
      await sleep(20);
      await allow(true);
      await sleep(20);
      const again = await batch([
        ['/while-switched-off', switchedOff],
        ['/switched-on', Date.now()],
      ]);
      expect(again.body).toMatchObject({ accepted: 1, skipped: 1 });
      expect((await pages()).sort()).toEqual(['/after-grant', '/switched-on']);
    });

    it('answers 401 without a session when anonymous sessions are off', async () => {
      const off = await startTestApp({ ANONYMOUS_SESSIONS: 'false' });
      try {
        for (const [path, body] of [
          ['/api/track/page', { page: '/x' }],
          ['/api/track/action', { action: 'cta.click' }],
          ['/api/track/events', { events: [{ type: 'custom', name: 'x' }] }],
        ] as const) {
          const res = await off.http().post(path).send(body);
          expect([res.status, res.body.message, res.headers['set-cookie']]).toEqual([
            401,
            'Authentication required: no valid session',
            undefined,
          ]);
        }
        const [{ n }] = await off.dataSource.query('SELECT COUNT(*) AS n FROM events');
        expect(Number(n)).toBe(0);
      } finally {
        await off.close();
      }
    });
  });

  describe('automatic tracking', () => {
    it('records route patterns, methods and statuses, including 404 and 500', async () => {
      const s = await registerAndLogin(t, 'auto');
      await t.http().get('/api/sessions').set('authorization', s.bearer).expect(200);
      await t
        .http()
        .get('/api/session/data/missing-key')
        .set('authorization', s.bearer)
        .expect(404);
      await t.http().get('/probe/crash').set('authorization', s.bearer).expect(500);
      await t.http().get('/health').set('authorization', s.bearer).expect(200);
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/p' })
        .expect(200);
      // A public route called with a session is recorded; a request the guard refused is not.
      await t.http().get('/').set('authorization', s.bearer).expect(200);
      await t.http().get('/api/analytics/overview').set('authorization', s.bearer).expect(403);
      await drain(t);
      const rows = await eventsOf(t, `user_id = '${s.userId}' AND type = 'api_request'`);
      const seen = rows.map((r: { name: string; properties: string }) => {
        const p = JSON.parse(r.properties);
        expect(Object.keys(p)).toEqual(['method', 'route', 'status', 'duration_ms']);
        expect(p.duration_ms).toBeGreaterThanOrEqual(0);
        return [r.name, p.route, p.method, p.status, typeof p.duration_ms];
      });
      expect(seen).toEqual([
        ['GET /api/sessions', '/api/sessions', 'GET', 200, 'number'],
        ['GET /api/session/data/:key', '/api/session/data/:key', 'GET', 404, 'number'],
        ['GET /probe/crash', '/probe/crash', 'GET', 500, 'number'],
        ['GET /', '/', 'GET', 200, 'number'],
      ]);
      expect(JSON.stringify(rows)).not.toContain('missing-key');
    });

    it('records login and logout as activity events', async () => {
      const s = await registerAndLogin(t, 'inout');
      await t.http().post('/auth/logout').set('authorization', s.bearer).expect(200);
      await drain(t);
      const rows = await eventsOf(
        t,
        `session_id = '${s.sessionId}' AND type IN ('login', 'logout')`,
      );
      expect(rows.map((r: { type: string; user_id: string }) => [r.type, r.user_id])).toEqual([
        ['login', s.userId],
        ['logout', s.userId],
      ]);
    });

    it('records a request whose consent check read the database once it allows, and only then', async () => {
      const s = await registerAndLogin(t, 'consent-reader');
      const consent = (granted: boolean) =>
        t
          .http()
          .post('/api/consent')
          .set('authorization', s.bearer)
          .send({ consent_type: 'analytics', granted })
          .expect(200);
      const listSessions = () =>
        t.http().get('/api/sessions').set('authorization', s.bearer).expect(200);
      const tracked = async () => {
        await drain(t);
        const rows = await eventsOf(t, `user_id = '${s.userId}' AND type = 'api_request'`);
        return rows.map((r: { name: string }) => r.name);
      };
      const before = await tracked();
      // A consent change empties the cached answer: the change's own request is decided by a
      // read of the ledger (asynchronously), the next one from the cache.
      await consent(false);
      await listSessions();
      expect(await tracked()).toEqual(before);
      await consent(true);
      await listSessions();
      expect(await tracked()).toEqual([...before, 'POST /api/consent', 'GET /api/sessions']);
    });

    it('does not record requests without a session', async () => {
      const before = await eventsOf(t, "type = 'api_request'");
      await t.http().get('/api/sessions').expect(401);
      await t.http().get('/').expect(200);
      await drain(t);
      expect(await eventsOf(t, "type = 'api_request'")).toHaveLength(before.length);
    });
  });

  describe('GET /api/activities', () => {
    it('filters and paginates newest first without gaps or repeats', async () => {
      const s = await registerAndLogin(t, 'historian');
      const base = Date.now() - 3_600_000;
      const events = Array.from({ length: 25 }, (_, i) => ({
        event_id: `h-${i}`,
        type: i % 3 === 0 ? 'page_view' : 'action',
        ...(i % 3 === 0 ? { page: `/p${i}` } : { name: i % 2 ? 'odd.click' : 'even.click' }),
        // pairs of equal timestamps exercise the (occurred_at, id) tie-break
        occurred_at: new Date(base + Math.floor(i / 2) * 1000).toISOString(),
      }));
      await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({ events })
        .expect(200);
      const expected = (await eventsOf(t, `user_id = '${s.userId}' AND event_id LIKE 'h-%'`))
        .map((r: { event_id: string }) => r.event_id)
        .reverse();

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t
          .http()
          .get(
            `/api/activities?limit=7&from=${new Date(base).toISOString()}&to=${new Date(base + 20_000).toISOString()}${cursor ? `&cursor=${cursor}` : ''}`,
          )
          .set('authorization', s.bearer)
          .expect(200);
        seen.push(...res.body.items.map((i: { event_id: string }) => i.event_id));
        cursor = res.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual(expected);

      const actions = await t
        .http()
        .get('/api/activities?type=action&name=odd.click')
        .set('authorization', s.bearer)
        .expect(200);
      expect(actions.body.items.every((i: { name: string }) => i.name === 'odd.click')).toBe(true);
      expect(actions.body.items).toHaveLength(8);
      const window = await t
        .http()
        .get(
          `/api/activities?from=${new Date(base).toISOString()}&to=${new Date(base + 2000).toISOString()}`,
        )
        .set('authorization', s.bearer)
        .expect(200);
      expect(window.body.items.map((i: { event_id: string }) => i.event_id).sort()).toEqual([
        'h-0',
        'h-1',
        'h-2',
        'h-3',
      ]);
      const item = window.body.items.find((i: { event_id: string }) => i.event_id === 'h-0');
      expect(item).toEqual({
        id: expect.any(Number),
        event_id: 'h-0',
        type: 'page_view',
        name: null,
        page: '/p0',
        properties: null,
        session_id: s.sessionId,
        occurred_at: new Date(base).toISOString(),
      });
    });

    it('reads a date as UTC midnight and a date-time at its offset, as the README says', async () => {
      const s = await registerAndLogin(t, 'calendar');
      const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10); // yesterday, UTC
      const batch = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({
          events: [
            {
              event_id: 'tz-1',
              type: 'custom',
              name: 'tz.offset',
              occurred_at: `${day}T10:30:00+01:00`,
            },
          ],
        })
        .expect(200);
      expect(batch.body.accepted).toBe(1);
      await drain(t);
      const [stored] = await eventsOf(t, `user_id = '${s.userId}' AND event_id = 'tz-1'`);
      expect(Number(stored.occurred_at)).toBe(Date.parse(`${day}T09:30:00Z`));
      const list = async (from: string) =>
        (
          await t
            .http()
            .get(`/api/activities?type=custom&from=${encodeURIComponent(from)}`)
            .set('authorization', s.bearer)
            .expect(200)
        ).body.items.map((item: { event_id: string; occurred_at: string }) => [
          item.event_id,
          item.occurred_at,
        ]);
      const expected = [['tz-1', `${day}T09:30:00.000Z`]];
      expect(await list(day)).toEqual(expected);
      expect(await list(`${day}T00:00:00Z`)).toEqual(expected);
      // The offset counts: 10:30+01:00 is the event's instant (from is inclusive), 10:31 after it.
      expect(await list(`${day}T10:30:00+01:00`)).toEqual(expected);
      expect(await list(`${day}T10:31:00+01:00`)).toEqual([]);
    });

    it('validates its query', async () => {
      const s = await registerAndLogin(t, 'query-checker');
      for (const q of [
        'type=bogus',
        'from=yesterday',
        'session_id=nope',
        'limit=0',
        'cursor=%%%',
        'unknown=1',
        // ISO 8601 forms Date.parse cannot read (they once reached SQL as NaN: 500)
        'from=2026-W49',
        'to=2026-336',
        // cursors of the right length but the wrong kind of values (Infinity, text)
        `cursor=${Buffer.from('[1e400,1]').toString('base64url')}`,
        `cursor=${Buffer.from('["a","b"]').toString('base64url')}`,
        `cursor=${Buffer.from('[1.5,1]').toString('base64url')}`,
      ]) {
        const res = await t
          .http()
          .get(`/api/activities?${q}`)
          .set('authorization', s.bearer)
          .expect(400);
        // The field the query got wrong, named in `details`.
        const field = q.split('=')[0];
        expect([q, res.body.details?.map((d: { field: string }) => d.field)]).toEqual([q, [field]]);
        if (field === 'cursor') {
          expect(res.body.message).toBe('cursor is not a cursor returned by this list');
        }
      }
    });

    it('shows only the caller’s events; admins can read anyone’s', async () => {
      const owner = await registerAndLogin(t, 'owner');
      await t
        .http()
        .post('/api/track/action')
        .set('authorization', owner.bearer)
        .send({ action: 'secret.thing' })
        .expect(200);
      const other = await registerAndLogin(t, 'other');
      const mine = await t
        .http()
        .get('/api/activities?name=secret.thing')
        .set('authorization', other.bearer)
        .expect(200);
      expect(mine.body.items).toEqual([]);
      // Another user's session id filters nothing in: the caller's own events only.
      const theirs = await t
        .http()
        .get(`/api/activities?session_id=${owner.sessionId}`)
        .set('authorization', other.bearer)
        .expect(200);
      expect(theirs.body.items).toEqual([]);
      // The owner's own sessions, one at a time.
      const second = await login(t, 'owner');
      await t
        .http()
        .post('/api/track/action')
        .set('authorization', second.bearer)
        .send({ action: 'second.thing' })
        .expect(200);
      await drain(t);
      const inSession = async (sessionId: string) =>
        (
          await t
            .http()
            .get(`/api/activities?session_id=${sessionId}&type=action`)
            .set('authorization', owner.bearer)
            .expect(200)
        ).body.items.map((item: { name: string; session_id: string }) => [
          item.name,
          item.session_id,
        ]);
      expect(await inSession(owner.sessionId)).toEqual([['secret.thing', owner.sessionId]]);
      expect(await inSession(second.sessionId)).toEqual([['second.thing', second.sessionId]]);
      await t
        .http()
        .get(`/api/admin/users/${owner.userId}/activities`)
        .set('authorization', other.bearer)
        .expect(403);
      const admin = await loginAdmin(t);
      const res = await t
        .http()
        .get(`/api/admin/users/${owner.userId}/activities?name=secret.thing`)
        .set('authorization', admin.bearer)
        .expect(200);
      expect(res.body.items).toHaveLength(1);
    });
  });

  describe('GET /api/track/stream', () => {
    it('pushes an event tracked by another client, filtered by user', async () => {
      const admin = await loginAdmin(t);
      const watched = await registerAndLogin(t, 'watched-live');
      const bystander = await registerAndLogin(t, 'bystander-live');
      await drain(t); // login events of the users above must not reach the stream
      const stream = await openStream(
        t.app,
        admin.bearer,
        `/api/track/stream?user_id=${watched.userId}`,
      );
      expect(stream.response.statusCode).toBe(200);
      expect(stream.response.headers['content-type']).toMatch(/^text\/event-stream/);

      await t
        .http()
        .post('/api/track/page')
        .set('authorization', bystander.bearer)
        .send({ page: '/not-me' })
        .expect(200);
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', watched.bearer)
        .send({ page: '/live' })
        .expect(200);
      await stream.waitFor('/live', 1000);
      stream.close();
      expect(stream.text()).toContain(': connected');
      expect(stream.data()).toEqual([
        expect.objectContaining({
          type: 'page_view',
          page: '/live',
          user_id: watched.userId,
          session_id: watched.sessionId,
        }),
      ]);
      // Watching someone is a read of their data: audited when the stream ends, with what
      // it showed (written asynchronously: poll briefly).
      const entries = await eventually(
        async () =>
          (
            await t
              .http()
              .get(`/api/admin/audit?action=admin_stream_read&user_id=${watched.userId}`)
              .set('authorization', admin.bearer)
              .expect(200)
          ).body.items as Record<string, unknown>[],
        (items) => items.length > 0,
      );
      expect(entries).toEqual([
        expect.objectContaining({
          actor_user_id: admin.userId,
          target_user_id: watched.userId,
          session_id: admin.sessionId,
          details: { items: 1 },
        }),
      ]);
    });

    it('pushes automatic request events under the ids and values they are stored with', async () => {
      const admin = await loginAdmin(t);
      const watched = await registerAndLogin(t, 'watched-requests');
      await drain(t);
      const stream = await openStream(
        t.app,
        admin.bearer,
        `/api/track/stream?user_id=${watched.userId}`,
      );
      await t.http().get('/api/sessions').set('authorization', watched.bearer).expect(200);
      await t
        .http()
        .get('/api/session/data/absent')
        .set('authorization', watched.bearer)
        .expect(404);
      await drain(t);
      await stream.waitFor('/api/session/data/:key', 1000);
      stream.close();
      const stored = await eventsOf(t, `user_id = '${watched.userId}' AND type = 'api_request'`);
      expect(stored.map((r: { name: string }) => r.name)).toEqual([
        'GET /api/sessions',
        'GET /api/session/data/:key',
      ]);
      // The writer's thread built the stored rows, the main thread the streamed ones.
      expect(stream.data()).toEqual(
        stored.map((r: { id: number; event_id: string; name: string; occurred_at: number }) => ({
          id: Number(r.id),
          event_id: r.event_id,
          type: 'api_request',
          name: r.name,
          page: null,
          user_id: watched.userId,
          session_id: watched.sessionId,
          occurred_at: new Date(Number(r.occurred_at)).toISOString(),
        })),
      );
      expect(stored.map((r: { properties: string }) => JSON.parse(r.properties).status)).toEqual([
        200, 404,
      ]);
    });

    it('ends within seconds once its session may no longer watch: demoted, logged out', async () => {
      const admin = await loginAdmin(t);
      const deputy = await registerAndLogin(t, 'deputy-live');
      await t
        .http()
        .patch(`/api/admin/users/${deputy.userId}`)
        .set('authorization', admin.bearer)
        .send({ role: 'admin' })
        .expect(200);
      const watcher = await loginAdmin(t); // a second session of the admin, to log out
      const open = async (bearer: string) => {
        const stream = await openStream(t.app, bearer);
        expect(stream.response.statusCode).toBe(200);
        return stream;
      };
      const demoted = await open(deputy.bearer);
      const loggedOut = await open(watcher.bearer);
      await sleep(1200);
      expect(demoted.text()).not.toContain('event: end'); // still allowed: still open
      await t
        .http()
        .patch(`/api/admin/users/${deputy.userId}`)
        .set('authorization', admin.bearer)
        .send({ role: 'user' })
        .expect(200);
      await t.http().post('/auth/logout').set('authorization', watcher.bearer).expect(200);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still open after 3 s'), 3000);
      });
      for (const stream of [demoted, loggedOut]) {
        const text = await Promise.race([stream.ended, timeout]);
        stream.close();
        expect(text).toContain('event: end\ndata: {"reason":"session_ended"}');
      }
      clearTimeout(timer);
    });

    it('answers HEAD with its headers at once, with no stream behind them', async () => {
      const admin = await loginAdmin(t);
      const res = await t
        .http()
        .head('/api/track/stream')
        .set('authorization', admin.bearer)
        .timeout(2000)
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(res.headers['cache-control']).toBe('no-store');
      const s = await registerAndLogin(t, 'not-admin-head-live');
      await t.http().head('/api/track/stream').set('authorization', s.bearer).expect(403);
    });

    it('is for admins only', async () => {
      const s = await registerAndLogin(t, 'not-admin-live');
      await t.http().get('/api/track/stream').set('authorization', s.bearer).expect(403);
      await t.http().get('/api/track/stream').expect(401);
    });
  });
});

describe('the live stream over time', () => {
  it('sends heartbeats, and ends once its session idles out: watching is not using the session', async () => {
    const t = await startTestApp({
      ...ADMIN_ENV,
      TRACKING_STREAM_HEARTBEAT_S: '1',
      SESSION_IDLE_TIMEOUT_S: '3',
      SESSION_TOUCH_INTERVAL_S: '0', // any use of the session would extend it
    });
    try {
      const admin = await loginAdmin(t);
      const stream = await openStream(t.app, admin.bearer);
      expect(stream.response.statusCode).toBe(200);
      await stream.waitFor(': heartbeat', 1_500);
      expect(stream.text()).toContain(': heartbeat\n\n');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still open after 6 s'), 6_000);
      });
      const text = await Promise.race([stream.ended, timeout]);
      clearTimeout(timer);
      stream.close();
      expect(text).toContain('event: end\ndata: {"reason":"session_ended"}');
      await t.http().get('/api/session').set('authorization', admin.bearer).expect(401);
    } finally {
      await t.close();
    }
  });
});

describe('late identity stitching', () => {
  it('logs a failed lookup and leaves the writer working (events stay anonymous until the next)', async () => {
    const t = await startTestApp();
    const database = t.app.get(DatabaseService);
    const writer = t.app.get(EventWriter);
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    // The lookup of upgraded sessions fails once (the writer's own chunked reads, of users
    // and of sessions that still exist, go through).
    const queryInChunks = database.queryInChunks.bind(database);
    let failures = 1;
    let lookups = 0;
    const lookup = jest
      .spyOn(database, 'queryInChunks')
      .mockImplementation((values, statement, manager) => {
        if (!statement('?').includes('FROM sessions WHERE id IN (?) AND user_id IS NOT NULL')) {
          return queryInChunks(values, statement, manager);
        }
        lookups += 1;
        if (failures-- > 0) return Promise.reject(new Error('connection reset'));
        return queryInChunks(values, statement, manager);
      });
    try {
      const anonymous = await t.http().post('/api/session').expect(201);
      const token = anonymous.body.session_id as string;
      await t.http().get('/api/session').set('authorization', `Bearer ${token}`).expect(200);
      await writer.drain();
      expect(lookups).toBe(1);
      expect(errors).toHaveBeenCalledWith('Late identity stitching failed: connection reset');
      // The writer goes on: the next anonymous commit is looked up again, without error.
      await t.http().get('/api/session').set('authorization', `Bearer ${token}`).expect(200);
      await writer.drain();
      expect(lookups).toBe(2);
      expect(errors).toHaveBeenCalledTimes(1);
      const [{ n }] = await database.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM events WHERE type = 'api_request' AND session_id = ?",
        [anonymous.body.session.id],
      );
      expect(Number(n)).toBe(2);
    } finally {
      lookup.mockRestore();
      errors.mockRestore();
      await t.close();
    }
  });
});

describe('identity stitching with several instances', () => {
  /**
   * Instance `b` holds an anonymous session's automatic event in its queue (nobody waits
   * for it: TRACKING_AUTO_FLUSH_MS) while the session logs in on instance `a`, whose
   * stitching waits for its own queue only; then `b` commits it.
   */
  async function loginWhileAnotherInstanceHoldsAnEvent(username: string, refuseAnalytics: boolean) {
    const { instances, close } = await startInstances(2, { TRACKING_AUTO_FLUSH_MS: '10000' });
    const [a, b] = instances;
    try {
      const owner = await registerAndLogin(a, username);
      if (refuseAnalytics) {
        await a
          .http()
          .put('/api/preferences/privacy.allow_analytics')
          .set('authorization', owner.bearer)
          .send({ value: false })
          .expect(200);
      }
      const anonymous = await b.http().post('/api/session').expect(201);
      const token = anonymous.body.session_id as string;
      await b.http().get('/api/session').set('authorization', `Bearer ${token}`).expect(200);
      const held = b.app.get(EventWriter);
      for (let i = 0; i < 100 && held.stats().queued === 0; i++) await sleep(5);
      expect(held.stats().queued).toBe(1);
      const s = await login(a, username, PASSWORD, { headers: { 'x-session-id': token } });
      expect(s.sessionId).toBe(anonymous.body.session.id); // upgraded in place
      await a.app.get(EventWriter).drain();
      await held.drain();
      const query = (sql: string) =>
        a.app.get(DatabaseService).query<Record<string, unknown>>(sql, [s.sessionId]);
      return {
        s,
        close,
        /** The held event's user (none once deleted). */
        heldEvent: () =>
          query("SELECT user_id FROM events WHERE session_id = ? AND name = 'GET /api/session'"),
        summary: () => query('SELECT user_id FROM session_summaries WHERE session_id = ?'),
      };
    } catch (error) {
      await close();
      throw error;
    }
  }

  it("attributes to the user an anonymous event another instance committed after the session's login", async () => {
    const { s, close, heldEvent, summary } = await loginWhileAnotherInstanceHoldsAnEvent(
      'late-event',
      false,
    );
    try {
      // Stitched once it committed (the drain waited for that too).
      expect(await heldEvent()).toEqual([{ user_id: s.userId }]);
      // The session's rollup row is the user's too: analytics count it as theirs.
      expect(await summary()).toEqual([{ user_id: s.userId }]);
    } finally {
      await close();
    }
  });

  it('deletes it instead when the user refused analytics', async () => {
    const { close, heldEvent } = await loginWhileAnotherInstanceHoldsAnEvent('late-private', true);
    try {
      expect(await heldEvent()).toEqual([]);
    } finally {
      await close();
    }
  });
});

if (TEST_DB_TYPE === 'postgres') {
  describe('live stream with several instances', () => {
    it('streams events that another instance wrote', async () => {
      const { instances, close } = await startInstances(2, ADMIN_ENV);
      const [watching, writing] = instances;
      try {
        const admin = await loginAdmin(watching);
        const user = await registerAndLogin(writing, 'elsewhere');
        await writing.app.get(EventWriter).drain(); // its login event must not reach the stream
        const stream = await openStream(
          watching.app,
          admin.bearer,
          `/api/track/stream?user_id=${user.userId}`,
        );
        expect(stream.response.statusCode).toBe(200);
        // The writing instance's own stream gets its event once: it skips its own notifications.
        const local = await openStream(
          writing.app,
          admin.bearer,
          `/api/track/stream?user_id=${user.userId}`,
        );
        await writing
          .http()
          .post('/api/track/page')
          .set('authorization', user.bearer)
          .send({ page: '/written-elsewhere' })
          .expect(200);
        await stream.waitFor('/written-elsewhere', 2000);
        await sleep(300); // time for a duplicate to arrive, were there one
        stream.close();
        local.close();
        expect(local.data().map((event) => event.page)).toEqual(['/written-elsewhere']);
        expect(stream.data()).toEqual([
          expect.objectContaining({
            type: 'page_view',
            page: '/written-elsewhere',
            user_id: user.userId,
            session_id: user.sessionId,
          }),
        ]);
      } finally {
        await close();
      }
    });
  });
}

describe('event queue limits', () => {
  it('answers 503 with Retry-After when the queue is full, and counts dropped automatic events', async () => {
    const t = await startTestApp({
      TRACKING_QUEUE_MAX: '1',
      TRACKING_FLUSH_MS: '1500',
      TRACKING_BATCH_MAX: '10',
    });
    try {
      const s = await registerAndLogin(t, 'flood');
      await t.app.get(EventWriter).drain(); // the login event included
      // supertest sends only once awaited: start it now. It fills the queue until the flush, 1.5 s later.
      const first = Promise.resolve(
        t.http().post('/api/track/action').set('authorization', s.bearer).send({ action: 'one' }),
      );
      // Wait until it sits in the queue (a fixed sleep races on a busy machine).
      const writer = t.app.get(EventWriter);
      for (let i = 0; i < 100 && writer.stats().queued === 0; i++) await sleep(5);
      expect(writer.stats().queued).toBe(1);
      // An automatic event meanwhile is dropped and counted.
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      const res = await t
        .http()
        .post('/api/track/action')
        .set('authorization', s.bearer)
        .send({ action: 'two' })
        .expect(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body.message).toBe('The event queue is full; retry shortly');
      // The other explicit routes too (the first action still waits for its flush).
      const sessionsBefore = await t.dataSource.query('SELECT COUNT(*) AS n FROM sessions');
      for (const [path, body] of [
        ['/api/track/page', { page: '/full' }],
        ['/api/track/events', { events: [{ type: 'custom', name: 'full' }] }],
      ] as const) {
        const refused = await t.http().post(path).set('authorization', s.bearer).send(body);
        expect([refused.status, refused.headers['retry-after'], refused.body.message]).toEqual([
          503,
          '1',
          'The event queue is full; retry shortly',
        ]);
        // Without a session too, and no anonymous session is started for a refused request.
        const anonymous = await t.http().post(path).send(body);
        expect([anonymous.status, anonymous.headers['set-cookie']]).toEqual([503, undefined]);
      }
      expect(await t.dataSource.query('SELECT COUNT(*) AS n FROM sessions')).toEqual(
        sessionsBefore,
      );
      expect((await first).status).toBe(200);
      const ready = await t.http().get('/health/ready').expect(200);
      expect(ready.body.tracking.dropped_events).toBe(1);
      const [{ n }] = await t.dataSource.query(
        "SELECT COUNT(*) AS n FROM events WHERE type = 'action'",
      );
      expect(Number(n)).toBe(1);
      const [{ others }] = await t.dataSource.query(
        "SELECT COUNT(*) AS others FROM events WHERE type IN ('page_view', 'custom')",
      );
      expect(Number(others)).toBe(0);
    } finally {
      await t.close();
    }
  });
});

describe('when queued events are committed', () => {
  it('drain() commits what was queued before it, now, though more keeps coming', async () => {
    const t = await startTestApp({ TRACKING_AUTO_FLUSH_MS: '10000' });
    const writer = t.app.get(EventWriter);
    const tracking = t.app.get(TrackingService);
    let stop = false;
    try {
      const s = await registerAndLogin(t, 'steady');
      const actor = { userId: s.userId, sessionId: s.sessionId, ip: null, userAgent: null };
      let recorded = 0;
      // Steady traffic: automatic events queued on every turn of the event loop, so the queue
      // is never empty (a drain waiting for an empty queue never returned). At most 2,000 wait
      // at a time, so that shutdown commits the rest quickly (PostgreSQL too).
      const traffic = () => {
        if (stop) return;
        if (writer.stats().queued < 2000) {
          tracking.record(actor, { type: 'custom', name: 'tick' });
          recorded += 1;
        }
        setImmediate(traffic);
      };
      traffic();
      await sleep(50);
      const before = recorded;
      const drained = writer.drain().then(() => 'drained');
      const timeout = sleep(5000).then(() => 'still waiting after 5 s');
      expect(await Promise.race([drained, timeout])).toBe('drained');
      stop = true;
      const [{ n }] = await t.app
        .get(DatabaseService)
        .query<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE name = 'tick'");
      expect(Number(n)).toBeGreaterThanOrEqual(before);
    } finally {
      stop = true;
      await t.close();
    }
  });

  it('queues automatic events in shared jobs of at most TRACKING_BATCH_MAX rows, apart from explicit writes', async () => {
    const t = await startTestApp({
      TRACKING_BATCH_MAX: '5',
      TRACKING_FLUSH_MS: '10000',
      TRACKING_AUTO_FLUSH_MS: '10000',
    });
    const writer = t.app.get(EventWriter);
    // Each commit's jobs, as [someone waits for it, its rows].
    const commits: [boolean, number][][] = [];
    const insertJobs = (writer as unknown as Record<string, (jobs: unknown[]) => unknown>)
      .insertJobs;
    const spy = jest
      .spyOn(writer as unknown as Record<string, (jobs: unknown[]) => unknown>, 'insertJobs')
      .mockImplementation(function (this: unknown, jobs) {
        const shape = jobs as { awaited: boolean; rows: unknown[] }[];
        commits.push(shape.map((job) => [job.awaited, job.rows.length]));
        return insertJobs.call(this, jobs);
      });
    try {
      const s = await registerAndLogin(t, 'shared-jobs');
      await writer.drain();
      commits.length = 0;
      const automatic = (i: number): EventRow => ({
        eventId: `auto-${i}`,
        dedupeKey: null,
        userId: s.userId,
        sessionId: s.sessionId,
        type: 'custom',
        name: 'auto',
        path: null,
        properties: `{"i":${i}}`,
        ip: null,
        userAgent: null,
        occurredAt: Date.now(),
        receivedAt: Date.now(),
      });
      for (let i = 0; i < 4; i++) writer.enqueue(automatic(i));
      expect(commits).toEqual([]);
      // The fifth row fills a batch: committed at once, and answered with its own row only.
      const stored = await writer.write([
        { ...automatic(4), eventId: 'explicit', dedupeKey: `u:${s.userId}:explicit` },
      ]);
      expect(stored.map((row) => row.eventId)).toEqual(['explicit']);
      // Seven more: five fill a job (and a batch, committed at once), two start the next.
      for (let i = 5; i < 12; i++) writer.enqueue(automatic(i));
      await writer.drain();
      expect(commits).toEqual([
        [
          [false, 4],
          [true, 1],
        ],
        [[false, 5]],
        [[false, 2]],
      ]);
      const rows = await eventsOf(t, `user_id = '${s.userId}' AND name = 'auto'`);
      expect(rows.map((r: { event_id: string }) => r.event_id).sort()).toEqual(
        [
          ...Array.from({ length: 12 }, (_, i) => `auto-${i}`).filter((id) => id !== 'auto-4'),
          'explicit',
        ].sort(),
      );
    } finally {
      spy.mockRestore();
      await t.close();
    }
  });

  it('holds automatic events for TRACKING_AUTO_FLUSH_MS, and commits them with the next explicit write', async () => {
    const t = await startTestApp({ TRACKING_FLUSH_MS: '20', TRACKING_AUTO_FLUSH_MS: '10000' });
    const writer = t.app.get(EventWriter);
    const count = async (type: string) => {
      const [{ n }] = await t.app
        .get(DatabaseService)
        .query<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE type = ?', [type]);
      return Number(n);
    };
    try {
      const s = await registerAndLogin(t, 'patient');
      await writer.drain();
      for (let i = 0; i < 3; i++) {
        await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      }
      // Well past TRACKING_FLUSH_MS (20 ms), far from the automatic events' own timer (10 s).
      await sleep(300);
      expect(writer.stats().queued).toBe(3);
      expect(await count('api_request')).toBe(0);
      // An explicit write is committed within TRACKING_FLUSH_MS, and takes them along.
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/now' })
        .expect(200);
      expect(writer.stats().queued).toBe(0);
      expect([await count('page_view'), await count('api_request')]).toEqual([1, 3]);
    } finally {
      await t.close();
    }
  });

  it('after a commit, commits the explicit writes that came in meanwhile at once, and leaves automatic events alone to their timer', async () => {
    const t = await startTestApp({ TRACKING_FLUSH_MS: '300', TRACKING_AUTO_FLUSH_MS: '10000' });
    const writer = t.app.get(EventWriter);
    const database = t.app.get(DatabaseService);
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 1000 && !done(); i++) await sleep(5);
      expect(done()).toBe(true);
    };
    /**
     * Sends an explicit write and returns (its response still to come) once its flush
     * (300 ms) has taken it and waits for the held commit.
     */
    const trackWhileHeld = async (page: string) => {
      const response = track(page);
      await until(() => writer.stats().queued === 1);
      await until(() => writer.stats().queued === 0);
      return { response };
    };
    /** Holds the writer's commits up (SQLite's write mutex, PostgreSQL's table lock) until release(). */
    const holdCommits = async () => {
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      if (!database.isPostgres) return { release, done: database.exclusively(() => held) };
      const runner = t.dataSource.createQueryRunner();
      await runner.startTransaction();
      await runner.query('LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE');
      const done = held.then(() => runner.commitTransaction()).finally(() => runner.release());
      return { release, done };
    };
    const track = (page: string) =>
      Promise.resolve(
        t.http().post('/api/track/page').set('authorization', s.bearer).send({ page }),
      );
    const automaticEvent = async () => {
      const before = writer.stats().queued;
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      // Queued after the policy check, a moment after the response.
      for (let i = 0; i < 100 && writer.stats().queued === before; i++) await sleep(5);
    };
    const s = await registerAndLogin(t, 'meanwhile');
    try {
      await writer.drain();
      // An explicit write arriving during a commit is committed right after it, and takes
      // the automatic event queued before it along.
      let hold = await holdCommits();
      const first = (await trackWhileHeld('/first')).response;
      await automaticEvent();
      const second = track('/second');
      await until(() => writer.stats().queued === 2);
      hold.release();
      await hold.done;
      expect([(await first).status, (await second).status]).toEqual([200, 200]);
      expect(writer.stats().queued).toBe(0);
      // An automatic event alone arriving during a commit waits for its own timer.
      hold = await holdCommits();
      const third = (await trackWhileHeld('/third')).response;
      await automaticEvent();
      expect(writer.stats().queued).toBe(1);
      hold.release();
      await hold.done;
      expect((await third).status).toBe(200);
      await sleep(100);
      expect(writer.stats().queued).toBe(1);
      const stored = await t.dataSource.query(
        "SELECT type, path FROM events WHERE type = 'page_view' OR name = 'GET /api/session' ORDER BY id",
      );
      expect(stored).toEqual([
        { type: 'page_view', path: '/first' },
        { type: 'api_request', path: null },
        { type: 'page_view', path: '/second' },
        { type: 'page_view', path: '/third' },
      ]);
    } finally {
      await t.close();
    }
  });

  it('commits automatic events alone once TRACKING_AUTO_FLUSH_MS has passed', async () => {
    const t = await startTestApp({ TRACKING_AUTO_FLUSH_MS: '50' });
    const writer = t.app.get(EventWriter);
    try {
      const s = await registerAndLogin(t, 'auto');
      await writer.drain();
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      // No drain: the timer alone commits it.
      let stored = 0;
      for (let i = 0; i < 200 && stored === 0; i++) {
        await sleep(10);
        const [{ n }] = await t.dataSource.query(
          "SELECT COUNT(*) AS n FROM events WHERE type = 'api_request'",
        );
        stored = Number(n);
      }
      expect(stored).toBe(1);
      expect(writer.stats().queued).toBe(0);
    } finally {
      await t.close();
    }
  });
});

describe('client timestamps under a short event retention', () => {
  it('accepts occurred_at only within RETENTION_EVENTS_DAYS when that is under 7 days', async () => {
    const t = await startTestApp({ RETENTION_EVENTS_DAYS: '2' });
    try {
      const s = await registerAndLogin(t, 'short-retention');
      const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({
          events: [
            { type: 'custom', name: 'recent', occurred_at: daysAgo(1.9) },
            { type: 'custom', name: 'expired', occurred_at: daysAgo(3) },
          ],
        })
        .expect(200);
      expect(res.body.accepted).toBe(1);
      expect(res.body.rejected).toEqual([
        {
          index: 1,
          reason: 'occurred_at must be within the last 2 days and at most 5 minutes ahead',
        },
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('the queue bounded in bytes (TRACKING_QUEUE_MAX_BYTES)', () => {
  it('answers 413 for a batch that could never fit, and 503 while queued rows fill it', async () => {
    const t = await startTestApp({
      TRACKING_QUEUE_MAX_BYTES: '65536',
      TRACKING_FLUSH_MS: '1500',
    });
    try {
      const s = await registerAndLogin(t, 'heavy');
      await t.app.get(EventWriter).drain();
      const batch = (n: number, tag: string) => ({
        events: Array.from({ length: n }, (_, i) => ({
          type: 'custom',
          name: `${tag}${i}`,
          properties: { blob: 'x'.repeat(7000) },
        })),
      });
      const send = (body: object) =>
        t.http().post('/api/track/events').set('authorization', s.bearer).send(body);
      const tooLarge = await send(batch(10, 'big')).expect(413);
      expect(tooLarge.body.message).toMatch(
        /^The batch holds about \d+ bytes of events; this server queues at most 65536 \(TRACKING_QUEUE_MAX_BYTES\): send smaller batches$/,
      );
      // About 36 KB waits for its flush (1.5 s); another 36 KB does not fit beside it.
      const first = Promise.resolve(send(batch(5, 'first')));
      const writer = t.app.get(EventWriter);
      for (let i = 0; i < 200 && writer.stats().queued === 0; i++) await sleep(5);
      const full = await send(batch(5, 'second')).expect(503);
      expect(full.headers['retry-after']).toBe('1');
      expect((await first).status).toBe(200);
      await send(batch(5, 'third')).expect(200);
    } finally {
      await t.close();
    }
  });
});

describe('request bodies in flight (BODY_INFLIGHT_MAX_BYTES)', () => {
  // Budget 1536 bytes, bodies of at most 1024: a held body of 1000 bytes (or a chunked one,
  // counted as 1024) leaves room for bodies of at most 536 (512) bytes. One client address may
  // hold max(1024, 1536 / 4) = 1024 bytes; each request names its client (X-Forwarded-For).
  const LIMITS = { BODY_LIMIT_BYTES: '1024', BODY_INFLIGHT_MAX_BYTES: '1536', TRUST_PROXY: 'true' };
  const loginBody = (padding: number) =>
    JSON.stringify({ username: 'x', password: 'y', pad: 'p'.repeat(padding) });

  /**
   * POSTs `body` to /auth/login on `port` from `client`: whole, or (`hold`)
   * only its first 100 bytes until `finish` is called; `dropped` resolves
   * when the server closes the connection first. `chunked`: without a
   * content-length.
   */
  const open: http.ClientRequest[] = [];
  let clients = 0;
  const post = (
    port: number,
    body: string,
    options: { hold?: boolean; chunked?: boolean; client?: string } = {},
  ) =>
    new Promise<{ status: number; text: string; finish: () => void; dropped: Promise<void> }>(
      (resolve, reject) => {
        let dropped = () => {};
        const closed = new Promise<void>((done) => (dropped = done));
        const req = http.request(
          {
            port,
            host: '127.0.0.1',
            method: 'POST',
            path: '/auth/login',
            headers: {
              'content-type': 'application/json',
              'x-forwarded-for': options.client ?? `198.51.100.${++clients}`,
              ...(options.chunked
                ? { 'transfer-encoding': 'chunked' }
                : { 'content-length': body.length }),
            },
          },
          (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, text, finish: () => {}, dropped: closed }),
            );
          },
        );
        req.on('error', (error) => (options.hold ? dropped() : reject(error)));
        open.push(req);
        if (!options.hold) return req.end(body);
        req.write(body.slice(0, 100));
        resolve({ status: 0, text: '', finish: () => req.end(body.slice(100)), dropped: closed });
      },
    );

  const withServer = async (test: (port: number) => Promise<void>, env = {}) => {
    const t = await startTestApp({ ...LIMITS, ...env });
    try {
      await t.app.listen(0, '127.0.0.1');
      await test((t.app.getHttpServer().address() as AddressInfo).port);
    } finally {
      // A failed assertion leaves a held body unfinished: closing would wait for it forever.
      for (const req of open.splice(0)) req.destroy();
      await t.close();
    }
  };

  it('answers 503 while other bodies hold the budget, and lets requests in once they are done', () =>
    withServer(async (port) => {
      const body = loginBody(950);
      const held = await post(port, body, { hold: true });
      await sleep(100); // the held request has reached the server and holds its length
      const refused = await post(port, body);
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.text)).toMatchObject({
        status_code: 503,
        message: 'Too many request bodies in flight; retry shortly',
      });
      held.finish();
      await sleep(100);
      const after = await post(port, body);
      expect(after.status).toBe(400); // the padded body's unknown field: it got through
    }));

  it('counts a chunked body (no declared length) as BODY_LIMIT_BYTES while it is received', () =>
    withServer(async (port) => {
      const held = await post(port, loginBody(10), { hold: true, chunked: true });
      await sleep(100);
      // 1024 held: a 500-byte body still fits (1524), a 600-byte one does not (1624).
      expect((await post(port, loginBody(450))).status).toBe(400);
      expect((await post(port, loginBody(550))).status).toBe(503);
      expect((await post(port, loginBody(10), { chunked: true })).status).toBe(503);
      held.finish();
      await sleep(100);
      expect((await post(port, loginBody(550))).status).toBe(400);
    }));

  it('lets one client address (an IPv6 /64) hold a quarter of the budget at most: 429 beyond', () =>
    withServer(async (port) => {
      const held = await post(port, loginBody(500), { hold: true, client: '2001:db8:7:7::1' });
      await sleep(100);
      // 540 bytes held by the /64: another 540 from it would make 1080 (over 1024), 440 makes 980.
      const sameBlock = await post(port, loginBody(500), { client: '2001:db8:7:7::2' });
      expect(sameBlock.status).toBe(429);
      expect(JSON.parse(sameBlock.text)).toMatchObject({
        status_code: 429,
        message: 'Too many request bodies in flight from this address',
      });
      expect((await post(port, loginBody(400), { client: '2001:db8:7:7::3' })).status).toBe(400);
      expect((await post(port, loginBody(500), { client: '2001:db8:7:8::1' })).status).toBe(400);
      held.finish();
      await sleep(100);
      expect((await post(port, loginBody(500), { client: '2001:db8:7:7::2' })).status).toBe(400);
    }));

  it('drops a body still arriving after BODY_RECEIVE_TIMEOUT_S, giving its share back', () =>
    withServer(
      async (port) => {
        const started = Date.now();
        const held = await post(port, loginBody(950), { hold: true });
        await sleep(100);
        expect((await post(port, loginBody(950))).status).toBe(503);
        await held.dropped;
        expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
        expect((await post(port, loginBody(950))).status).toBe(400);
      },
      { BODY_RECEIVE_TIMEOUT_S: '1' },
    ));
});

describe('a batch larger than the whole queue', () => {
  it('answers 413 (not a 503 to retry forever) and stores nothing; a batch that fits is stored', async () => {
    const t = await startTestApp({ TRACKING_QUEUE_MAX: '5' });
    try {
      const s = await registerAndLogin(t, 'big-batch');
      const batch = (n: number) => ({
        events: Array.from({ length: n }, (_, i) => ({ type: 'custom', name: `b${i}` })),
      });
      const res = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send(batch(6))
        .expect(413);
      expect(res.body.message).toBe(
        'The batch holds 6 events; this server queues at most 5 (TRACKING_QUEUE_MAX): send smaller batches',
      );
      expect(res.headers['retry-after']).toBeUndefined();
      // Without a session: refused before an anonymous session is started (no row, no cookie).
      const sessionsBefore = await t.dataSource.query('SELECT COUNT(*) AS n FROM sessions');
      const anonymous = await t.http().post('/api/track/events').send(batch(6)).expect(413);
      expect(anonymous.headers['set-cookie']).toBeUndefined();
      expect(anonymous.body.session_id).toBeNull();
      expect(await t.dataSource.query('SELECT COUNT(*) AS n FROM sessions')).toEqual(
        sessionsBefore,
      );
      await t.app.get(EventWriter).drain();
      const custom = "SELECT COUNT(*) AS n FROM events WHERE type = 'custom'";
      expect(Number((await t.dataSource.query(custom))[0].n)).toBe(0);
      await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send(batch(5))
        .expect(200);
      expect(Number((await t.dataSource.query(custom))[0].n)).toBe(5);
    } finally {
      await t.close();
    }
  });
});

describe('the live stream listener', () => {
  it('keeps trying to listen again, with growing delays, until it can', async () => {
    const t = await startTestApp();
    try {
      const stream = t.app.get<
        LiveEventStream,
        { listen: () => Promise<void>; reconnect: (delayMs: number) => void }
      >(LiveEventStream);
      const down = new Error('the database system is starting up');
      const attempts: number[] = [];
      const started = Date.now();
      let succeeded!: () => void;
      const done = new Promise<void>((resolve) => (succeeded = resolve));
      const listen = jest.spyOn(stream, 'listen').mockImplementation(() => {
        attempts.push(Date.now() - started);
        if (attempts.length < 3) return Promise.reject(down);
        succeeded();
        return Promise.resolve();
      });
      try {
        stream.reconnect(20);
        await Promise.race([done, sleep(3000)]);
        expect(attempts).toHaveLength(3);
        // 20 ms, then 40 and 80 more: the delay doubles after each failure.
        expect(attempts[1] - attempts[0]).toBeGreaterThanOrEqual(35);
        expect(attempts[2] - attempts[1]).toBeGreaterThanOrEqual(75);
      } finally {
        listen.mockRestore();
      }
    } finally {
      await t.close();
    }
  });
});

describe('TRACKING_ENABLED=false', () => {
  it('records no api_request events, while explicit tracking and login events still work', async () => {
    const t = await startTestApp({ TRACKING_ENABLED: 'false' });
    try {
      const s = await registerAndLogin(t, 'untracked');
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      await t.http().get('/api/sessions').set('authorization', s.bearer).expect(200);
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/still-tracked' })
        .expect(200);
      await drain(t);
      const rows = await eventsOf(t, `user_id = '${s.userId}'`);
      expect(rows.map((r: { type: string; path: string | null }) => [r.type, r.path])).toEqual([
        ['login', null],
        ['page_view', '/still-tracked'],
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('the event writer on its own SQLite thread', () => {
  /** The writer's thread: on a SQLite file only (PostgreSQL writes from the pool). */
  const threadOf = (t: TestApp) =>
    t.app.get<EventWriter, { thread: SqliteWriterThread | null }>(EventWriter).thread;
  /** Ends the writer's thread as a crash would, and waits until the writer has noticed. */
  const killThread = async (t: TestApp, thread: SqliteWriterThread) => {
    await thread.terminate();
    for (let i = 0; i < 100 && threadOf(t) !== null; i++) await sleep(5);
  };
  /** Where the writer commits, as readiness reports it. */
  const writerNow = async (t: TestApp) =>
    (await t.http().get('/health/ready').expect(200)).body.tracking.writer;
  const countEvents = async (t: TestApp, where: string) =>
    Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM events WHERE ${where}`))[0].n);

  it('interleaves its commits with the main connection’s transactions: every request succeeds, every event is stored', async () => {
    const t = await startTestApp();
    try {
      const s = await registerAndLogin(t, 'busy-writer');
      expect(threadOf(t) !== null).toBe(TEST_DB_TYPE === 'sqlite');
      const events = Array.from({ length: 200 }, (_, i) => ({ type: 'custom', name: `bulk.${i}` }));
      // Session data writes read before they write (the size limit) in one transaction each:
      // should the thread commit in between, SQLite would fail them (SQLITE_BUSY).
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) => [
          t.http().post('/api/track/events').set('authorization', s.bearer).send({ events }),
          t.http().put(`/api/session/data/k${i}`).set('authorization', s.bearer).send({ value: i }),
          t.http().get('/api/session').set('authorization', s.bearer),
        ]).flat(),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(30).fill(200));
      await drain(t);
      expect(await countEvents(t, "type = 'custom'")).toBe(2000);
      const data = await t.http().get('/api/session/data').set('authorization', s.bearer);
      expect(Object.keys(data.body.data)).toHaveLength(10);
    } finally {
      await t.close();
    }
  });

  it('rejects a write whose transaction fails, stores nothing of it, and keeps committing', async () => {
    const t = await startTestApp();
    try {
      const s = await registerAndLogin(t, 'bad-row');
      await drain(t);
      const writer = t.app.get(EventWriter);
      const now = Date.now();
      const row = (eventId: string | null, name: string) =>
        ({
          eventId,
          dedupeKey: null,
          userId: s.userId,
          sessionId: s.sessionId,
          type: 'custom',
          name,
          path: null,
          properties: null,
          ip: null,
          userAgent: null,
          occurredAt: now,
          receivedAt: now,
        }) as EventRow;
      // event_id is NOT NULL: the whole job fails (on SQLite inside the writer's thread).
      await expect(writer.write([row('ok-1', 'doomed'), row(null, 'doomed')])).rejects.toThrow(
        /NOT NULL|not-null/i,
      );
      expect(await countEvents(t, "name = 'doomed'")).toBe(0);
      const [stored] = await writer.write([row('ok-2', 'after')]);
      expect([stored.eventId, typeof stored.id]).toEqual(['ok-2', 'number']);
      expect(await countEvents(t, "name = 'after'")).toBe(1);
      expect(await writerNow(t)).toBe(TEST_DB_TYPE === 'postgres' ? 'pool' : 'thread');
    } finally {
      await t.close();
    }
  });

  it('commits on the main connection a flush that took the thread just before it died', async () => {
    const t = await startTestApp();
    try {
      const s = await registerAndLogin(t, 'mid-crash');
      await drain(t);
      // SQLite: the flush takes the thread, then waits for the write lock, held here; the
      // thread dies meanwhile. Its commit would never be answered: the write hung, and every
      // drain. (PostgreSQL writes from the pool: the write simply commits.)
      const thread = threadOf(t);
      let release = () => {};
      const held = thread
        ? t.app
            .get(DatabaseService)
            .exclusively(() => new Promise<void>((resolve) => (release = resolve)))
        : Promise.resolve();
      const tracked = t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/mid-crash' })
        .then((res) => res.status);
      if (thread) {
        await sleep(100); // the flush is waiting for the lock
        await killThread(t, thread);
        release();
        await held;
      }
      const outcome = await Promise.race([tracked, sleep(3000).then(() => 'hung')]);
      expect(outcome).toBe(200);
      expect(await countEvents(t, "path = '/mid-crash'")).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('keeps writing on the main connection once its thread died', async () => {
    const t = await startTestApp();
    try {
      const s = await registerAndLogin(t, 'after-crash');
      // The login event committed first: a batch the thread holds when it dies fails.
      await drain(t);
      expect(await writerNow(t)).toBe(TEST_DB_TYPE === 'postgres' ? 'pool' : 'thread');
      const thread = threadOf(t);
      if (thread) await killThread(t, thread);
      expect(threadOf(t)).toBeNull();
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/after-crash' })
        .expect(200);
      // No drain: an acknowledged event is committed.
      expect(await countEvents(t, "path = '/after-crash'")).toBe(1);
      // Automatic tracking too (the explicit tracking routes are not tracked again).
      await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
      await drain(t);
      expect(await countEvents(t, `type = 'api_request' AND user_id = '${s.userId}'`)).toBe(1);
      const ready = await t.http().get('/health/ready').expect(200);
      expect(ready.body.tracking.failed_events).toBe(0);
      expect(await writerNow(t)).toBe(TEST_DB_TYPE === 'postgres' ? 'pool' : 'main');
    } finally {
      await t.close();
    }
  });
});
