import { EventWriter } from '../src/modules/tracking/event-writer';
import { rebuildAllSummaries } from '../src/modules/tracking/session-summaries';
import { TrackingService } from '../src/modules/tracking/tracking.service';
import { ADMIN_ENV, login, loginAdmin, PASSWORD, register, registerAndLogin } from './support/auth';
import { insertEvents, uid } from './support/events';
import { startTestApp, TestApp } from './support/test-app';

const DAY = 86_400_000;

interface SummaryRow {
  session_id: string;
  user_id: string | null;
  first_at: number;
  last_at: number;
  page_views: number;
  actions: number;
  api_requests: number;
  entry_path: string | null;
  exit_path: string | null;
  [column: string]: unknown;
}

/** Every summary row, numbers as numbers (PostgreSQL returns bigint columns as numbers here too). */
async function summaries(t: TestApp): Promise<SummaryRow[]> {
  const rows = await t.dataSource.query<SummaryRow[]>(
    'SELECT * FROM session_summaries ORDER BY session_id',
  );
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? +v : v]),
    ),
  ) as SummaryRow[];
}

/** What the rollup holds after being recomputed from the events table. */
async function rebuilt(t: TestApp): Promise<SummaryRow[]> {
  await t.dataSource.transaction((manager) =>
    rebuildAllSummaries((sql) => manager.query(sql), t.dataSource.options.type === 'postgres'),
  );
  return summaries(t);
}

/**
 * The per-session rollup must always equal what the events table says:
 * after the writer's group commits, identity stitching, retention and
 * erasure.
 */
describe('session summaries (the per-session rollup)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...ADMIN_ENV, RETENTION_EVENTS_DAYS: '30', RETENTION_BATCH: '2' });
  });
  afterAll(async () => {
    await t.close();
  });
  const drain = () => t.app.get(EventWriter).drain();

  it('is kept by the event writer: equal to a rebuild, stitched to the user at login', async () => {
    await register(t, 'roller');
    const writer = t.app.get(EventWriter);
    const rebuiltBefore = writer.stats().rebuiltSummaries;
    const first = await t.http().post('/api/track/page').send({ page: '/landing' }).expect(200);
    const token = first.body.session_id as string;
    const now = Date.now();
    // A batch sent late: its page views happened before /landing, one of them twice (a resend).
    const batch = await t
      .http()
      .post('/api/track/events')
      .set('x-session-id', token)
      .send({
        events: [
          {
            event_id: 'e1',
            type: 'page_view',
            page: '/early',
            occurred_at: new Date(now - 60_000).toISOString(),
          },
          {
            event_id: 'e2',
            type: 'action',
            name: 'cta.click',
            occurred_at: new Date(now - 30_000).toISOString(),
          },
          {
            event_id: 'e1',
            type: 'page_view',
            page: '/early',
            occurred_at: new Date(now - 60_000).toISOString(),
          },
        ],
      })
      .expect(200);
    expect(batch.body).toMatchObject({ accepted: 2, duplicates: 1 });
    expect(writer.stats().rebuiltSummaries - rebuiltBefore).toBe(1);
    const s = await login(t, 'roller', PASSWORD, { headers: { 'x-session-id': token } });
    // The same page twice in a row, in separate batches: one item in the session's path.
    for (let i = 0; i < 2; i++) {
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/done' })
        .expect(200);
    }
    await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
    await drain();

    const kept = await summaries(t);
    const row = kept.find((r) => r.session_id === s.sessionId);
    expect(row).toMatchObject({
      user_id: s.userId,
      page_views: 4,
      actions: 1,
      entry_path: '/early',
      exit_path: '/done',
    });
    // The late batch was rebuilt into place; later items were appended, api requests left out.
    expect(JSON.parse(row!.items as string)).toEqual([
      '/early',
      'action:cta.click',
      '/landing',
      'login',
      '/done',
    ]);
    expect(row!.api_requests).toBeGreaterThanOrEqual(1);
    expect(row!.logins).toBe(1);
    const [{ first_at, last_at }] = await t.dataSource.query(
      `SELECT MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at FROM events WHERE session_id = '${s.sessionId}'`,
    );
    expect([row!.first_at, row!.last_at]).toEqual([Number(first_at), Number(last_at)]);
    expect(kept).toEqual(await rebuilt(t));
    // Only the late batch made the writer recompute the row; every later batch appended.
    expect(writer.stats().rebuiltSummaries - rebuiltBefore).toBe(1);
    const ready = await t.http().get('/health/ready').expect(200);
    expect(ready.body.tracking.rebuilt_summaries).toBe(rebuiltBefore + 1);
  });

  it('follows identity stitching even when no later event carries the user', async () => {
    // A login event would also bring the user id into the row (consent may keep it from
    // being stored): stitching alone must attribute the session. The anonymous session
    // becomes the user's as a login with it would make it, without the login's events.
    const { id: user } = await register(t, 'stitched-without-events');
    const page = await t.http().post('/api/track/page').send({ page: '/before-login' }).expect(200);
    const [{ session_id: session }] = await t.dataSource.query<{ session_id: string }[]>(
      `SELECT session_id FROM events WHERE event_id = '${page.body.event_id}'`,
    );
    expect((await summaries(t)).find((r) => r.session_id === session)?.user_id).toBeNull();
    await t.dataSource.query(`UPDATE sessions SET user_id = '${user}' WHERE id = '${session}'`);

    expect(await t.app.get(TrackingService).stitch(session, user)).toBe(1);

    expect((await summaries(t)).find((r) => r.session_id === session)).toMatchObject({
      user_id: user,
      page_views: 1,
      entry_path: '/before-login',
    });
    await drain();
    expect(await summaries(t)).toEqual(await rebuilt(t));
  });

  it('follows retention: sessions losing old events are recomputed, emptied ones removed', async () => {
    const admin = await loginAdmin(t);
    const [old, mixed] = [uid('r', 1), uid('r', 2)];
    const now = Date.now();
    await insertEvents(t, [
      { user: null, session: old, type: 'page_view', path: '/gone', at: now - 40 * DAY },
      { user: null, session: old, type: 'page_view', path: '/gone/too', at: now - 39 * DAY },
      { user: null, session: mixed, type: 'page_view', path: '/expired', at: now - 31 * DAY },
      { user: null, session: mixed, type: 'action', name: 'kept.action', at: now - 29 * DAY },
      { user: null, session: mixed, type: 'page_view', path: '/kept', at: now - 28 * DAY },
    ]);
    await t.http().post('/api/admin/retention/run').set('authorization', admin.bearer).expect(200);
    await drain(); // the admin's login and request events, queued meanwhile

    const kept = await summaries(t);
    expect(kept.find((r) => r.session_id === old)).toBeUndefined();
    expect(kept.find((r) => r.session_id === mixed)).toMatchObject({
      first_at: now - 29 * DAY,
      last_at: now - 28 * DAY,
      page_views: 1,
      actions: 1,
      entry_path: '/kept',
      exit_path: '/kept',
    });
    expect(kept).toEqual(await rebuilt(t));
  });

  it('keeps no path over MAX_PATH_CHARS: analytics read such a session from its events', async () => {
    const long = await registerAndLogin(t, 'long-roller');
    const admin = await loginAdmin(t);
    const start = Date.now() - 100_000;
    const page = (i: number) => `/long/path/segment/${String(i).padStart(4, '0')}`;
    // 1,000 distinct pages: about 26,000 characters of path, over the 16,384 kept.
    await t
      .http()
      .post('/api/track/events')
      .set('authorization', long.bearer)
      .send({
        events: Array.from({ length: 1000 }, (_, i) => ({
          event_id: `long-${i}`,
          type: 'page_view',
          page: page(i),
          occurred_at: new Date(start + i * 50).toISOString(),
        })),
      })
      .expect(200);
    await drain();
    const row = (await summaries(t)).find((r) => r.session_id === long.sessionId);
    // Unkept, but not empty: items_at (the login, which came after the batch's times) says so.
    expect(row).toMatchObject({ items: null, page_views: 1000, logins: 1 });
    expect(row!.items_at).toBeGreaterThan(start + 999 * 50);
    expect(await summaries(t)).toEqual(await rebuilt(t));

    // A later page keeps it unkept (appending stops), still equal to a rebuild.
    await t
      .http()
      .post('/api/track/page')
      .set('authorization', long.bearer)
      .send({ page: '/after' })
      .expect(200);
    await drain();
    expect((await summaries(t)).find((r) => r.session_id === long.sessionId)?.items).toBeNull();
    expect(await summaries(t)).toEqual(await rebuilt(t));

    const range = `from=${new Date(start - 3_600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const next = await t
      .http()
      .get(`/api/analytics/transitions?${range}&item=${page(500)}`)
      .set('authorization', admin.bearer)
      .expect(200);
    expect(next.body).toEqual({
      item: page(500),
      total: 1,
      items: [{ next: page(501), count: 1, probability: 1 }],
    });
    const last = await t
      .http()
      .get(`/api/analytics/transitions?${range}&item=${page(999)}`)
      .set('authorization', admin.bearer)
      .expect(200);
    expect(last.body.items).toEqual([{ next: 'login', count: 1, probability: 1 }]);
    const login = await t
      .http()
      .get(`/api/analytics/transitions?${range}&item=login`)
      .set('authorization', admin.bearer)
      .expect(200);
    // (Other tests' sessions log in too: only this session goes on to /after.)
    expect(login.body.items).toContainEqual(expect.objectContaining({ next: '/after', count: 1 }));
  });

  it('follows erasure: the user’s sessions leave the rollup, others stay', async () => {
    const gone = await registerAndLogin(t, 'erased-roller');
    const stays = await registerAndLogin(t, 'staying-roller');
    for (const s of [gone, stays]) {
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: '/x' })
        .expect(200);
    }
    await drain();
    await t.http().delete('/api/gdpr/delete').set('authorization', gone.bearer).expect(200);
    await drain();

    const kept = await summaries(t);
    expect(
      kept.filter((r) => r.user_id === gone.userId || r.session_id === gone.sessionId),
    ).toEqual([]);
    expect(kept.find((r) => r.session_id === stays.sessionId)).toMatchObject({ page_views: 1 });
    expect(kept).toEqual(await rebuilt(t));
  });
});
