import { Logger } from '@nestjs/common';
import type { Worker } from 'node:worker_threads';
import { WalCheckpointer } from '../src/common/database/wal-checkpointer';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { AuditService } from '../src/modules/compliance/audit.service';
import { ConsentService } from '../src/modules/compliance/consent.service';
import { ErasureService } from '../src/modules/compliance/erasure.service';
import { TrackingService } from '../src/modules/tracking/tracking.service';
import { DataRetentionService } from '../src/modules/compliance/data-retention.service';
import { PreferencesService } from '../src/modules/preferences/preferences.service';
import { EventWriter } from '../src/modules/tracking/event-writer';
import { SessionSummaries } from '../src/modules/tracking/session-summaries.service';
import { DatabaseService } from '../src/common/database/database.service';
import { AppConfig, loadConfig } from '../src/common/config/config';
import { processingRecord } from '../src/modules/compliance/processing';
import {
  ADMIN_ENV,
  login,
  loginAdmin,
  LoggedIn,
  PASSWORD,
  register,
  registerAndLogin,
  sleep,
} from './support/auth';
import { turnedBefore } from './support/event-loop';
import { eventually } from './support/eventually';
import { collectPages } from './support/pages';
import { startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

const DAY = 86_400_000;

/** An automatic event as the writer takes it, for tests that hand rows to it directly. */
const apiRequestRow = (userId: string | null, sessionId: string, eventId: string) => ({
  eventId,
  dedupeKey: null,
  userId,
  sessionId,
  type: 'api_request' as const,
  name: 'GET /api/session',
  path: null,
  properties: null,
  ip: null,
  userAgent: null,
  occurredAt: Date.now(),
  receivedAt: Date.now(),
});

async function allTables(t: TestApp): Promise<string[]> {
  const rows =
    TEST_DB_TYPE === 'postgres'
      ? await t.dataSource.query(
          "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
        )
      : await t.dataSource.query(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        );
  return rows.map((r: { name: string }) => r.name);
}

/** Inserts `n` events for a user quickly (multi-row INSERTs). */
async function bulkEvents(
  t: TestApp,
  userId: string,
  sessionId: string,
  n: number,
  at = Date.now(),
) {
  for (let start = 0; start < n; start += 1000) {
    const size = Math.min(1000, n - start);
    const values: string[] = [];
    for (let i = 0; i < size; i++) {
      const id = randomUUID();
      values.push(
        `('${id}', 'x:${id}', '${userId}', '${sessionId}', 'page_view', NULL, '/bulk/${start + i}', NULL, '203.0.113.0', NULL, ${at}, ${at})`,
      );
    }
    await t.dataSource.query(
      `INSERT INTO events (event_id, dedupe_key, user_id, session_id, type, name, path, properties, ip, user_agent, occurred_at, received_at) VALUES ${values.join(', ')}`,
    );
  }
  await t.app.get(SessionSummaries).rebuild([sessionId]);
}

describe('consent', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('records decisions in an append-only ledger and reports the latest per type', async () => {
    const s = await registerAndLogin(t, 'consenter');
    const first = await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send({ consent_type: 'marketing', granted: true, policy_version: 'v1' })
      .expect(200);
    expect(first.body).toMatchObject({
      status: 'success',
      message: 'Consent recorded',
      consent: {
        consent_type: 'marketing',
        granted: true,
        policy_version: 'v1',
        source: 'api',
        session_id: s.sessionId,
      },
    });
    await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send({ consent_type: 'marketing', granted: false, source: 'settings' })
      .expect(200);
    const current = await t.http().get('/api/consent').set('authorization', s.bearer).expect(200);
    expect(current.body.mode).toBe('opt-out');
    expect(current.body.consents).toEqual([
      {
        consent_type: 'analytics',
        granted: true,
        default: true,
        policy_version: null,
        source: null,
        recorded_at: null,
      },
      expect.objectContaining({
        consent_type: 'marketing',
        granted: false,
        default: false,
        source: 'settings',
      }),
      {
        // The mode is about analytics: other purposes are not granted until given.
        consent_type: 'personalization',
        granted: false,
        default: true,
        policy_version: null,
        source: null,
        recorded_at: null,
      },
    ]);
    const history = await t
      .http()
      .get('/api/consent/history')
      .set('authorization', s.bearer)
      .expect(200);
    expect(history.body.items.map((c: { granted: boolean }) => c.granted)).toEqual([false, true]);
    expect(history.body.next_cursor).toBeNull();
  });

  it.each([
    ['an unknown type', { consent_type: 'telepathy', granted: true }, 'consent_type'],
    ['granted as a string', { consent_type: 'analytics', granted: 'true' }, 'granted'],
    ['granted missing', { consent_type: 'analytics' }, 'granted'],
    ['a bad source', { consent_type: 'analytics', granted: true, source: 'guess' }, 'source'],
    [
      'a source users cannot claim',
      { consent_type: 'analytics', granted: true, source: 'admin' },
      'source',
    ],
  ])('rejects %s with 400 naming the field, and records nothing', async (_label, body, field) => {
    const s = await registerAndLogin(t, `bad-consent-${Math.random().toString(36).slice(2, 8)}`);
    const res = await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send(body)
      .expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field)).toEqual([field]);
    const history = await t
      .http()
      .get('/api/consent/history')
      .set('authorization', s.bearer)
      .expect(200);
    expect(history.body.items).toEqual([]);
  });

  it('pages the ledger by next_cursor, newest first, without gaps or repeats', async () => {
    const s = await registerAndLogin(t, 'ledger-pager');
    for (const [consent_type, granted] of [
      ['analytics', true],
      ['marketing', true],
      ['analytics', false],
    ] as const) {
      await t
        .http()
        .post('/api/consent')
        .set('authorization', s.bearer)
        .send({ consent_type, granted })
        .expect(200);
    }
    const { items, pageSizes } = await collectPages<{ consent_type: string; granted: boolean }>(
      t,
      '/api/consent/history?limit=2',
      s.bearer,
    );
    const seen = items.map((c) => [c.consent_type, c.granted]);
    const pages = pageSizes.length;
    expect(pages).toBe(2);
    expect(seen).toEqual([
      ['analytics', false],
      ['marketing', true],
      ['analytics', true],
    ]);
  });

  it('opt-out: stops storing analytics once analytics consent is withdrawn', async () => {
    const s = await registerAndLogin(t, 'withdrawer');
    expect(
      (await t.http().post('/api/track/page').set('authorization', s.bearer).send({ page: '/a' }))
        .body.stored,
    ).toBe(true);
    await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send({ consent_type: 'analytics', granted: false })
      .expect(200);
    const res = await t
      .http()
      .post('/api/track/events')
      .set('authorization', s.bearer)
      .send({ events: [{ type: 'page_view', page: '/b' }] })
      .expect(200);
    expect(res.body).toEqual({ accepted: 0, duplicates: 0, skipped: 1, rejected: [] });
    await t.app.get(EventWriter).drain();
    const rows = await t.dataSource.query(
      `SELECT path FROM events WHERE user_id = '${s.userId}' AND type = 'page_view'`,
    );
    expect(rows.map((r: { path: string }) => r.path)).toEqual(['/a']);
  });
});

describe('consent in opt-in mode', () => {
  it('stores analytics only after analytics consent was granted', async () => {
    const t = await startTestApp({ TRACKING_CONSENT_MODE: 'opt-in' });
    try {
      const s = await registerAndLogin(t, 'optin');
      expect(
        (
          await t
            .http()
            .post('/api/track/page')
            .set('authorization', s.bearer)
            .send({ page: '/before' })
        ).body.stored,
      ).toBe(false);
      await t
        .http()
        .post('/api/consent')
        .set('authorization', s.bearer)
        .send({ consent_type: 'analytics', granted: true })
        .expect(200);
      expect(
        (
          await t
            .http()
            .post('/api/track/page')
            .set('authorization', s.bearer)
            .send({ page: '/after' })
        ).body.stored,
      ).toBe(true);
      const anon = await t.http().post('/api/track/page').send({ page: '/anonymous' }).expect(200);
      expect(anon.body.stored).toBe(false);
      // A batch of events from before and after the grant: only the later one is stored.
      const batch = await t
        .http()
        .post('/api/track/events')
        .set('authorization', s.bearer)
        .send({
          events: [
            {
              type: 'page_view',
              page: '/before-grant',
              occurred_at: new Date(Date.now() - 60_000).toISOString(),
            },
            { type: 'page_view', page: '/after-grant' },
          ],
        })
        .expect(200);
      expect(batch.body).toEqual({ accepted: 1, duplicates: 0, skipped: 1, rejected: [] });
      const rows = await t.dataSource.query(
        "SELECT path FROM events WHERE type = 'page_view' ORDER BY path",
      );
      expect(rows.map((r: { path: string }) => r.path)).toEqual(['/after', '/after-grant']);
      const current = await t.http().get('/api/consent').set('authorization', s.bearer).expect(200);
      expect(
        current.body.consents.find((c: { consent_type: string }) => c.consent_type === 'marketing')
          .granted,
      ).toBe(false);
    } finally {
      await t.close();
    }
  });
});

describe('export', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(ADMIN_ENV);
  });
  afterAll(async () => {
    await t.close();
  });

  it('contains every category and no token or hash', async () => {
    const s = await registerAndLogin(t, 'exporter');
    const remembered = await login(t, 'exporter', PASSWORD, { remember_me: true });
    await t
      .http()
      .put('/api/session/data/cart')
      .set('authorization', s.bearer)
      .send({ value: { items: 2 } })
      .expect(200);
    // A valid key that a plain object would take for its prototype.
    await t
      .http()
      .put('/api/session/data/__proto__')
      .set('authorization', s.bearer)
      .send({ value: { kept: true } })
      .expect(200);
    await t
      .http()
      .post('/api/track/action')
      .set('authorization', s.bearer)
      .send({ action: 'export.csv' })
      .expect(200);
    await t
      .http()
      .patch('/api/preferences')
      .set('authorization', s.bearer)
      .send({ theme: 'dark' })
      .expect(200);
    await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send({ consent_type: 'marketing', granted: true })
      .expect(200);
    await t.app.get(EventWriter).drain();
    const res = await t.http().get('/api/gdpr/export').set('authorization', s.bearer).expect(200);
    expect(res.headers['content-disposition']).toBe(
      `attachment; filename="personal-data-${s.userId}.json"`,
    );
    const doc = JSON.parse(res.text);
    expect(Object.keys(doc)).toEqual([
      'schema_version',
      'export_date',
      'user',
      'sessions',
      'session_data',
      'session_data_updated_at',
      'session_events',
      'activities',
      'preferences',
      'consents',
      'audit',
      'processing',
    ]);
    expect(doc.user).toMatchObject({ id: s.userId, username: 'exporter' });
    expect(doc.sessions.map((x: { id: string }) => x.id)).toContain(s.sessionId);
    const sessionData = doc.session_data[s.sessionId];
    expect(Object.keys(sessionData).sort()).toEqual(['__proto__', 'cart']);
    expect(Object.getOwnPropertyDescriptor(sessionData, '__proto__')?.value).toEqual({
      kept: true,
    });
    expect(sessionData.cart).toEqual({ items: 2 });
    // Every stored field, as stored: timestamps and the session's settings and deadlines.
    const database = t.app.get(DatabaseService);
    const iso = (ms: unknown) => new Date(Number(ms)).toISOString();
    const [account] = await database.query<{ updated_at: number }>(
      'SELECT updated_at FROM users WHERE id = ?',
      [s.userId],
    );
    expect(doc.user.updated_at).toBe(iso(account.updated_at));
    const [row] = await database.query<{
      idle_expires_at: number;
      absolute_expires_at: number;
      auth_time: number;
    }>('SELECT idle_expires_at, absolute_expires_at, auth_time FROM sessions WHERE id = ?', [
      s.sessionId,
    ]);
    const exported = doc.sessions.find((x: { id: string }) => x.id === s.sessionId);
    expect(exported).toMatchObject({
      absolute_expires_at: iso(row.absolute_expires_at),
      auth_time: iso(row.auth_time),
      remember_me: false,
    });
    expect(doc.sessions.find((x: { id: string }) => x.id === remembered.sessionId)).toMatchObject({
      remember_me: true,
    });
    // The idle deadline slides with each request (the export's own included): the two
    // deadlines are consistent with each other and with expires_at.
    expect(Date.parse(exported.idle_expires_at)).toBeLessThanOrEqual(Number(row.idle_expires_at));
    expect(exported.expires_at).toBe(
      [exported.idle_expires_at, exported.absolute_expires_at].sort()[0],
    );
    const dataTimes = await database.query<{ key: string; updated_at: number }>(
      'SELECT key, updated_at FROM session_data WHERE session_id = ? ORDER BY key',
      [s.sessionId],
    );
    const exportedTimes = doc.session_data_updated_at[s.sessionId];
    expect(Object.keys(exportedTimes).sort()).toEqual(['__proto__', 'cart']);
    for (const { key, updated_at } of dataTimes) {
      expect(Object.getOwnPropertyDescriptor(exportedTimes, key)?.value).toBe(iso(updated_at));
    }
    const [themeRow] = await database.query<{ updated_at: number }>(
      "SELECT updated_at FROM user_preferences WHERE user_id = ? AND key = 'theme'",
      [s.userId],
    );
    expect(doc.preferences.updated_at).toEqual({ theme: iso(themeRow.updated_at) });
    expect(
      doc.activities.map((a: { type: string; name: string | null }) => `${a.type}:${a.name}`),
    ).toContain('action:export.csv');
    expect(doc.preferences.as_set).toEqual({ theme: 'dark' });
    expect(doc.preferences.effective.theme).toBe('dark');
    expect(doc.consents).toEqual([
      expect.objectContaining({ consent_type: 'marketing', granted: true }),
    ]);
    expect(doc.audit.map((a: { action: string }) => a.action)).toEqual(
      expect.arrayContaining(['preference_change', 'consent_change']),
    );
    expect(doc.processing.purposes.length).toBeGreaterThan(0);
    const hash = createHash('sha256').update(s.token).digest('hex');
    expect(res.text).not.toContain(s.token);
    expect(res.text).not.toContain(hash);
    expect(res.text).not.toContain('scrypt$');
  });

  it('streams a user with 200,000 events', async () => {
    const s = await registerAndLogin(t, 'heavy');
    await bulkEvents(t, s.userId, s.sessionId, 200_000);
    const res = await t.http().get('/api/gdpr/export').set('authorization', s.bearer).expect(200);
    expect(res.headers['content-length']).toBeUndefined(); // sent as a stream, not built whole
    const doc = JSON.parse(res.text);
    expect(
      doc.activities.filter((a: { page: string | null }) => a.page?.startsWith('/bulk/')).length,
    ).toBe(200_000);
  }, 120_000);

  it('contains the session events of a session from before its login', async () => {
    await register(t, 'newcomer');
    const anonymous = await t.http().post('/api/session').expect(201);
    const token = anonymous.body.session_id as string;
    const sessionId = anonymous.body.session.id as string;
    const s = await login(t, 'newcomer', PASSWORD, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(s.sessionId).toBe(sessionId);
    const res = await t.http().get('/api/gdpr/export').set('authorization', s.bearer).expect(200);
    const events = JSON.parse(res.text).session_events as { session_id: string; type: string }[];
    expect(events.map((e) => `${e.session_id}:${e.type}`)).toEqual([
      `${sessionId}:created`,
      `${sessionId}:rotated`,
    ]);
  });

  it('shows each party of an audit entry the entry, not the other party', async () => {
    const admin = await loginAdmin(t);
    const carol = await registerAndLogin(t, 'carol-audited');
    await t
      .http()
      .patch(`/api/admin/users/${carol.userId}`)
      .set('authorization', admin.bearer)
      .set('x-request-id', 'jane-doe-console-42') // clients may choose their request ids
      .send({ role: 'admin' })
      .expect(200);
    type Entry = Record<string, unknown>;
    const update = async (bearer: string) => {
      // Audit records are written asynchronously: poll briefly.
      for (let i = 0; i < 50; i++) {
        const res = await t.http().get('/api/gdpr/export').set('authorization', bearer).expect(200);
        const entry = (JSON.parse(res.text).audit as Entry[]).find(
          (a) => a.action === 'admin_user_update',
        );
        if (entry) return entry;
        await sleep(20);
      }
      throw new Error('no admin_user_update entry');
    };
    // The admin sees what they did and when, not to whom or with what.
    expect(await update(admin.bearer)).toMatchObject({
      actor_type: 'admin',
      actor_user_id: admin.userId,
      session_id: admin.sessionId,
      request_id: 'jane-doe-console-42',
      target_user_id: null,
      details: null,
    });
    // Carol sees what was done to her, not by whom (a client-chosen request id could say).
    expect(await update(carol.bearer)).toMatchObject({
      actor_type: 'admin',
      actor_user_id: null,
      session_id: null,
      request_id: null,
      target_user_id: carol.userId,
      details: { role: 'admin' },
    });
  });

  it("records admins' reads of people's data, and shows each person the reads of theirs", async () => {
    const admin = await loginAdmin(t);
    const dave = await registerAndLogin(t, 'dave-read');
    await t
      .http()
      .post('/api/track/action')
      .set('authorization', dave.bearer)
      .send({ action: 'read.me' })
      .expect(200);
    // A HEAD request sends no body, and a refused read answers nothing: neither is recorded.
    const head = await t
      .http()
      .head(`/api/admin/users/${dave.userId}/activities`)
      .set('authorization', admin.bearer)
      .expect(200);
    const missing = await t
      .http()
      .get('/api/admin/users/00000000-0000-4000-8000-000000000000/activities')
      .set('authorization', admin.bearer)
      .expect(404);
    const read = async (url: string, items: number) => {
      const res = await t.http().get(url).set('authorization', admin.bearer).expect(200);
      expect(res.body.items).toHaveLength(items);
      return res.headers['x-request-id'];
    };
    const requests = {
      admin_sessions_read: await read(`/api/admin/users/${dave.userId}/sessions`, 1),
      admin_activities_read: await read(`/api/admin/users/${dave.userId}/activities?limit=1`, 1),
      admin_session_events_read: await read(`/api/admin/session-events?user_id=${dave.userId}`, 1),
    };
    const everyone = await t
      .http()
      .get('/api/admin/users?limit=2')
      .set('authorization', admin.bearer)
      .expect(200);
    // Audit records are written after the answer: read until they are in.
    type Entry = Record<string, unknown>;
    // The entries of the reads of Dave's data, from a JSON document's `section`.
    const reads = (url: string, bearer: string, section: 'items' | 'audit') =>
      eventually(
        async () => {
          const res = await t.http().get(url).set('authorization', bearer).expect(200);
          return (JSON.parse(res.text) as Record<string, Entry[]>)[section].filter(
            (e) => String(e.action).startsWith('admin_') && String(e.action).endsWith('_read'),
          );
        },
        (found) => found.length >= 3,
      );
    const logged = await reads(`/api/admin/audit?user_id=${dave.userId}`, admin.bearer, 'items');
    expect(logged.map((e) => e.action).sort()).toEqual(Object.keys(requests).sort());
    for (const entry of logged) {
      expect(entry).toMatchObject({
        actor_type: 'admin',
        actor_user_id: admin.userId,
        target_user_id: dave.userId,
        session_id: admin.sessionId,
        request_id: requests[entry.action as keyof typeof requests],
        details: { items: 1 },
      });
    }
    const activityReads = await t
      .http()
      .get('/api/admin/audit?action=admin_activities_read')
      .set('authorization', admin.bearer)
      .expect(200);
    const recordedRequests = activityReads.body.items.map((e: Entry) => e.request_id);
    expect(recordedRequests).toContain(requests.admin_activities_read);
    expect(recordedRequests).not.toContain(head.headers['x-request-id']);
    expect(recordedRequests).not.toContain(missing.headers['x-request-id']);
    // The directory read names nobody in particular; it is the admin's entry alone.
    const directory = await eventually(
      async () => {
        const res = await t
          .http()
          .get('/api/admin/audit?action=admin_users_read')
          .set('authorization', admin.bearer)
          .expect(200);
        return (res.body.items as Entry[]).find(
          (e) => e.request_id === everyone.headers['x-request-id'],
        );
      },
      (entry) => entry !== undefined,
    );
    expect(directory).toMatchObject({
      actor_type: 'admin',
      actor_user_id: admin.userId,
      target_user_id: null,
      request_id: everyone.headers['x-request-id'],
      details: { items: 2 },
    });
    // Dave's export shows the reads of his data and when, not which admin made them.
    const exported = await reads('/api/gdpr/export', dave.bearer, 'audit');
    expect(exported.map((e) => e.action).sort()).toEqual(Object.keys(requests).sort());
    for (const entry of exported) {
      expect(entry).toMatchObject({
        actor_type: 'admin',
        actor_user_id: null,
        session_id: null,
        request_id: null,
        target_user_id: dave.userId,
        details: { items: 1 },
      });
    }
  });

  it('lets admins export any user, and only admins', async () => {
    const admin = await loginAdmin(t);
    const target = await registerAndLogin(t, 'exported');
    const res = await t
      .http()
      .get(`/api/admin/users/${target.userId}/export`)
      .set('authorization', admin.bearer)
      .expect(200);
    expect(JSON.parse(res.text).user.username).toBe('exported');
    await t
      .http()
      .get(`/api/admin/users/${admin.userId}/export`)
      .set('authorization', target.bearer)
      .expect(403);
    await t
      .http()
      .get('/api/admin/users/00000000-0000-4000-8000-000000000000/export')
      .set('authorization', admin.bearer)
      .expect(404);
  });
});

describe("export: other people's addresses", () => {
  let t: TestApp;
  beforeAll(async () => {
    // TRUST_PROXY lets each party come from an address of its own (X-Forwarded-For).
    t = await startTestApp({ ...ADMIN_ENV, TRUST_PROXY: 'true' });
  });
  afterAll(async () => {
    await t.close();
  });

  it("keeps an admin's and another user's address out of a user's session log", async () => {
    const OWN = '198.51.100.20';
    const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
    await register(t, 'watched');
    await register(t, 'borrower');
    const first = await login(t, 'watched', PASSWORD, from(OWN));
    const admin = await login(
      t,
      ADMIN_ENV.ADMIN_USERNAME,
      ADMIN_ENV.ADMIN_PASSWORD,
      from('203.0.113.77'),
    );
    await t
      .http()
      .delete(`/api/admin/users/${first.userId}/sessions`)
      .set('authorization', admin.bearer)
      .set('x-forwarded-for', '203.0.113.77')
      .expect(200);
    // Someone else logs in on a device holding the user's session: it ends that session.
    const second = await login(t, 'watched', PASSWORD, from(OWN));
    await t
      .http()
      .post('/auth/login')
      .set('authorization', second.bearer)
      .set('x-forwarded-for', '192.0.2.44')
      .send({ username: 'borrower', password: PASSWORD })
      .expect(200);
    // The user logging in again over their own session: their own address is kept.
    const third = await login(t, 'watched', PASSWORD, from(OWN));
    const fourth = await login(t, 'watched', PASSWORD, {
      headers: { 'x-forwarded-for': OWN, authorization: third.bearer },
    });
    const res = await t
      .http()
      .get('/api/gdpr/export')
      .set('authorization', fourth.bearer)
      .expect(200);
    const log = JSON.parse(res.text).session_events as {
      session_id: string;
      type: string;
      reason: string;
      ip: string | null;
    }[];
    const ended = log
      .filter((e) => e.type === 'revoked')
      .map((e) => [e.session_id, e.reason, e.ip]);
    expect(ended).toHaveLength(3);
    expect(ended).toEqual(
      expect.arrayContaining([
        [first.sessionId, 'admin', null],
        [second.sessionId, 'logout', null],
        [third.sessionId, 'logout', OWN],
      ]),
    );
    expect(log.filter((e) => e.type === 'created').map((e) => e.ip)).toEqual([OWN, OWN, OWN, OWN]);
    expect(res.text).not.toContain('203.0.113.77');
    expect(res.text).not.toContain('192.0.2.44');
  });
});

describe('erasure', () => {
  let t: TestApp;
  beforeAll(async () => {
    // TRUST_PROXY lets each test user come from an address of its own (X-Forwarded-For).
    t = await startTestApp({ ...ADMIN_ENV, FRESH_AUTH_MAX_AGE_S: '2', TRUST_PROXY: 'true' });
  });
  afterAll(async () => {
    await t.close();
  });

  async function populate(username: string, ip = '198.51.100.7'): Promise<LoggedIn> {
    const s = await login(t, username, PASSWORD, {
      headers: { 'user-agent': 'eraser-agent', 'x-forwarded-for': ip },
    });
    await t
      .http()
      .put('/api/session/data/k')
      .set('authorization', s.bearer)
      .send({ value: 'v' })
      .expect(200);
    await t
      .http()
      .post('/api/track/page')
      .set('authorization', s.bearer)
      .send({ page: '/mine' })
      .expect(200);
    await t
      .http()
      .patch('/api/preferences')
      .set('authorization', s.bearer)
      .send({ theme: 'dark' })
      .expect(200);
    await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send({ consent_type: 'analytics', granted: true })
      .expect(200);
    return s;
  }

  it('needs a fresh authentication', async () => {
    await register(t, 'slowpoke');
    const s = await login(t, 'slowpoke');
    await sleep(2100);
    const res = await t
      .http()
      .delete('/api/gdpr/delete')
      .set('authorization', s.bearer)
      .expect(403);
    expect(res.body.error).toBe('reauth_required');
    await login(t, 'slowpoke');
  });

  if (TEST_DB_TYPE === 'sqlite') {
    it('leaves nothing of the erased data readable in the SQLite file or its WAL', async () => {
      const marker = `zed${randomUUID().slice(0, 8)}`;
      await register(t, `${marker}-user`);
      const s = await login(t, `${marker}-user`);
      await t
        .http()
        .post('/api/track/page')
        .set('authorization', s.bearer)
        .send({ page: `/${marker}-page`, title: `${marker}-title` })
        .expect(200);
      await t
        .http()
        .put('/api/session/data/note')
        .set('authorization', s.bearer)
        .send({ value: `${marker}-value` })
        .expect(200);
      const file = t.app.get(AppConfig).database.path;
      const bytes = () =>
        [file, `${file}-wal`]
          .filter((name) => existsSync(name))
          .map((name) => readFileSync(name).toString('latin1'))
          .join('');
      const traces = () =>
        ['user', 'page', 'title', 'value'].filter((what) => bytes().includes(`${marker}-${what}`));
      expect(traces()).toEqual(['user', 'page', 'title', 'value']);
      await t.http().delete('/api/gdpr/delete').set('authorization', s.bearer).expect(200);
      expect(traces()).toEqual([]);
    });
  }

  if (TEST_DB_TYPE === 'sqlite') {
    it('still erases, and says so in the log, when the WAL cannot be emptied', async () => {
      const alone = await startTestApp();
      const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        // Internals: the checkpoint worker gone (it died), so nothing can empty the WAL.
        const checkpointer = alone.app.get(WalCheckpointer);
        await (checkpointer as unknown as { worker: Worker }).worker.terminate();
        const s = await registerAndLogin(alone, 'no-checkpointer');
        const res = await alone
          .http()
          .delete('/api/gdpr/delete')
          .set('authorization', s.bearer)
          .expect(200);
        expect(res.body).toMatchObject({ user_id: s.userId, verified: true });
        expect(warnings.mock.calls.map(([message]) => String(message))).toContainEqual(
          `Erasure ${res.body.receipt_id}: the WAL could not be emptied yet (readers busy or no checkpointer); later checkpoints overwrite it`,
        );
      } finally {
        warnings.mockRestore();
        await alone.close();
      }
    });
  }

  it('rolls everything back when a module fails half-way', async () => {
    await register(t, 'unlucky');
    const s = await populate('unlucky');
    const preferences = t.app.get(PreferencesService);
    const spy = jest
      .spyOn(preferences, 'eraseUser')
      .mockRejectedValueOnce(new Error('disk on fire'));
    const res = await t
      .http()
      .delete('/api/gdpr/delete')
      .set('authorization', s.bearer)
      .expect(500);
    spy.mockRestore();
    expect(JSON.stringify(res.body)).not.toContain('disk on fire');
    for (const [table, column] of [
      ['users', 'id'],
      ['sessions', 'user_id'],
      ['events', 'user_id'],
      ['user_preferences', 'user_id'],
      ['consents', 'user_id'],
    ]) {
      const [{ n }] = await t.dataSource.query(
        `SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = '${s.userId}'`,
      );
      // The table named in the assertion: a failure says which one lost the user's rows.
      expect([table, Number(n) > 0]).toEqual([table, true]);
    }
    await t.http().get('/api/session').set('authorization', s.bearer).expect(200);
  });

  describe('racing the erasure', () => {
    const context = { actorType: 'user' as const, actorUserId: null, requestId: 'race' };
    const count = async (table: string, column: string, id: string) =>
      Number(
        (
          await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = '${id}'`)
        )[0].n,
      );

    it('lets only one of parallel erasures of an account erase it (one receipt)', async () => {
      const s = await registerAndLogin(t, 'erased-twice');
      const erasure = t.app.get(ErasureService);
      const results = await Promise.allSettled([
        erasure.erase(s.userId, 'self', context),
        erasure.erase(s.userId, 'self', context),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(rejected.reason).toMatchObject({ status: 404 });
    });

    it('stitches nothing to a user erased between their login and the stitching', async () => {
      const s = await registerAndLogin(t, 'erased-before-stitch');
      const anonymous = await t
        .http()
        .post('/api/track/page')
        .send({ page: '/before' })
        .expect(200);
      const [{ session_id: anonymousSession }] = await t.dataSource.query(
        `SELECT session_id FROM events WHERE event_id = '${anonymous.body.event_id}'`,
      );
      await t.app.get(ErasureService).erase(s.userId, 'self', context);
      expect(await t.app.get(TrackingService).stitch(anonymousSession, s.userId)).toBe(0);
      expect(await count('events', 'user_id', s.userId)).toBe(0);
      expect(await count('session_summaries', 'user_id', s.userId)).toBe(0);
    });

    it('deletes the anonymous events of every session the user had, not only those their events name', async () => {
      const s = await registerAndLogin(t, 'erased-with-anonymous-events');
      // An event of the user's session still queued as anonymous (sent before login to
      // another instance) when the login's stitching ran.
      await t.app.get(EventWriter).write([
        {
          eventId: 'late-anonymous',
          dedupeKey: null,
          userId: null,
          sessionId: s.sessionId,
          type: 'page_view',
          name: null,
          path: '/late',
          properties: null,
          ip: null,
          userAgent: null,
          occurredAt: Date.now(),
          receivedAt: Date.now(),
        },
      ]);
      // ...and the session's other events not attributed either (stitching missed them all).
      await t.dataSource.query(
        `UPDATE events SET user_id = NULL WHERE session_id = '${s.sessionId}'`,
      );
      expect(await count('events', 'session_id', s.sessionId)).toBeGreaterThan(1);
      await t.app.get(ErasureService).erase(s.userId, 'self', context);
      expect(await count('events', 'session_id', s.sessionId)).toBe(0);
      expect(await count('session_summaries', 'session_id', s.sessionId)).toBe(0);
    });

    it('answers consent and preference writes of an erased user with 401, storing nothing', async () => {
      const s = await registerAndLogin(t, 'erased-then-writes');
      await t.app.get(ErasureService).erase(s.userId, 'self', context);
      await expect(
        t.app
          .get(ConsentService)
          .record(s.userId, { consent_type: 'analytics', granted: true }, context),
      ).rejects.toMatchObject({ status: 401 });
      await expect(
        t.app.get(PreferencesService).update(s.userId, { theme: 'dark' }, context),
      ).rejects.toMatchObject({ status: 401 });
      expect(await count('consents', 'user_id', s.userId)).toBe(0);
      expect(await count('user_preferences', 'user_id', s.userId)).toBe(0);
    });
  });

  it('keeps audit entries of requests still in flight from naming the erased user', async () => {
    await register(t, 'late-audit');
    const s = await populate('late-audit', '198.51.100.9');
    const other = await registerAndLogin(t, 'late-audit-bystander');
    await t.http().delete('/api/gdpr/delete').set('authorization', s.bearer).expect(200);
    // What a preference change of the user's other device, committed just before the
    // erasure, still emits afterwards (the audit entry is written after the change's commit).
    const audit = t.app.get(AuditService);
    const entry = (actor: string, target: string, sessionId: string, requestId: string) => ({
      actorType: 'user' as const,
      actorUserId: actor,
      action: 'preference_change',
      targetUserId: target,
      details: { keys: ['theme'] },
      sessionId,
      requestId,
    });
    await audit.onRecord(entry(s.userId, s.userId, s.sessionId, 'late-own'));
    await audit.onRecord(entry(other.userId, s.userId, other.sessionId, 'late-other'));
    await audit.onRecord(entry(other.userId, other.userId, other.sessionId, 'late-bystander'));
    const rows = await t.dataSource.query(
      `SELECT request_id, actor_user_id, target_user_id, session_id FROM audit_log
       WHERE request_id LIKE 'late-%' ORDER BY request_id`,
    );
    expect(rows).toEqual([
      // the erased user appears nowhere; the bystander (an admin, say) stays accountable
      {
        request_id: 'late-bystander',
        actor_user_id: other.userId,
        target_user_id: other.userId,
        session_id: other.sessionId,
      },
      {
        request_id: 'late-other',
        actor_user_id: other.userId,
        target_user_id: null,
        session_id: other.sessionId,
      },
      { request_id: 'late-own', actor_user_id: null, target_user_id: null, session_id: null },
    ]);
  });

  it('keeps events of requests still in flight from outliving the erasure', async () => {
    await register(t, 'in-flight');
    const s = await populate('in-flight', '198.51.100.8');
    const other = await registerAndLogin(t, 'in-flight-bystander');
    await t.http().delete('/api/gdpr/delete').set('authorization', s.bearer).expect(200);
    // What a request of the user's other device, past its checks when the erasure ran,
    // would still hand to the writer: an automatic event and an explicit one, in the same
    // batch as a bystander's event.
    const writer = t.app.get(EventWriter);
    const row = apiRequestRow;
    writer.enqueue(row(s.userId, s.sessionId, randomUUID()));
    writer.enqueue(row(other.userId, other.sessionId, randomUUID()));
    const stored = await writer.write([
      {
        ...row(s.userId, s.sessionId, 'late'),
        type: 'page_view',
        path: '/late',
        dedupeKey: `u:${s.userId}:late`,
      },
    ]);
    await writer.drain();
    expect(stored).toEqual([]);
    const count = async (userId: string) =>
      Number(
        (
          await t.dataSource.query(`SELECT COUNT(*) AS n FROM events WHERE user_id = '${userId}'`)
        )[0].n,
      );
    expect(await count(s.userId)).toBe(0);
    const [summaries] = await t.dataSource.query(
      `SELECT COUNT(*) AS n FROM session_summaries WHERE user_id = '${s.userId}'`,
    );
    expect(Number(summaries.n)).toBe(0);
    expect(await count(other.userId)).toBeGreaterThan(0);
    const [bystanderRows] = await t.dataSource.query(
      `SELECT COUNT(*) AS n FROM events WHERE user_id = '${other.userId}' AND type = 'api_request' AND name = 'GET /api/session'`,
    );
    expect(Number(bystanderRows.n)).toBe(1);
  });

  /** A visitor tracked anonymously who then logged in with that session (upgraded in place). */
  async function upgradedVisitor(username: string) {
    const visitor = await t
      .http()
      .post('/api/track/page')
      .send({ page: '/before-login' })
      .expect(200);
    const [{ id: sessionId }] = await t.dataSource.query(
      `SELECT session_id AS id FROM events WHERE event_id = '${visitor.body.event_id}'`,
    );
    await register(t, username);
    const login = await t
      .http()
      .post('/auth/login')
      .set('authorization', `Bearer ${visitor.body.session_id}`)
      .send({ username, password: PASSWORD })
      .expect(200);
    return { sessionId: sessionId as string, bearer: `Bearer ${login.body.session_id}` };
  }

  const eventsOfSession = async (table: string, session: string) =>
    Number(
      (
        await t.dataSource.query(
          `SELECT COUNT(*) AS n FROM ${table} WHERE session_id = '${session}'`,
        )
      )[0].n,
    );

  it('drops anonymous events of an erased user’s session that land after the erasure', async () => {
    // A visitor tracked anonymously, logged in with that session and erased their account,
    // while another instance still held the session's anonymous events (its automatic
    // events wait up to TRACKING_AUTO_FLUSH_MS): they reach the writer afterwards.
    const { sessionId, bearer } = await upgradedVisitor('erased-anonymous-late');
    const bystander = await t
      .http()
      .post('/api/track/page')
      .send({ page: '/bystander' })
      .expect(200);
    const [{ id: bystanderSession }] = await t.dataSource.query(
      `SELECT session_id AS id FROM events WHERE event_id = '${bystander.body.event_id}'`,
    );
    await t.http().delete('/api/gdpr/delete').set('authorization', bearer).expect(200);
    expect(await eventsOfSession('events', sessionId)).toBe(0);

    const anonymous = (session: string, eventId: string) => apiRequestRow(null, session, eventId);
    const stored = await t.app
      .get(EventWriter)
      .write([anonymous(sessionId, 'late-erased'), anonymous(bystanderSession, 'late-bystander')]);
    expect(stored.map((event) => event.eventId)).toEqual(['late-bystander']);
    expect(await eventsOfSession('events', sessionId)).toBe(0);
    expect(await eventsOfSession('session_summaries', sessionId)).toBe(0);
    expect(await eventsOfSession('events', bystanderSession)).toBe(2);
  });

  if (TEST_DB_TYPE === 'postgres') {
    it('waits for an anonymous event of the user’s session still being written, then erases it', async () => {
      const { sessionId, bearer } = await upgradedVisitor('erased-while-written');
      // Another instance's writer, mid-transaction: it checked that the session exists (and
      // so holds its row) and inserted an anonymous event, not committed yet.
      const database = t.app.get(DatabaseService);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let inserted!: () => void;
      const written = new Promise<void>((resolve) => (inserted = resolve));
      const writing = database.transaction(async (manager) => {
        expect((await database.missingSessions([sessionId], manager)).size).toBe(0);
        await database.executeIn(
          manager,
          `INSERT INTO events (event_id, session_id, type, name, occurred_at, received_at)
           VALUES (?, ?, 'api_request', 'GET /api/session', ?, ?)`,
          ['in-flight-anonymous', sessionId, Date.now(), Date.now()],
        );
        inserted();
        await gate;
      });
      await written;
      let answered = false;
      const erasure = t
        .http()
        .delete('/api/gdpr/delete')
        .set('authorization', bearer)
        .then((res) => {
          answered = true;
          return res;
        });
      await sleep(300);
      expect(answered).toBe(false);
      release();
      await writing;
      expect((await erasure).status).toBe(200);
      expect(await eventsOfSession('events', sessionId)).toBe(0);
    });
  }

  it('erases the session events of a session from before its login, its row cleaned up long ago', async () => {
    // Without analytics no event names the session: only the session events do.
    const first = await registerAndLogin(t, 'walker');
    await t
      .http()
      .patch('/api/preferences')
      .set('authorization', first.bearer)
      .send({ privacy: { allow_analytics: false } })
      .expect(200);
    const anonymous = await t.http().post('/api/session').expect(201);
    const sessionId = anonymous.body.session.id as string;
    const s = await login(t, 'walker', PASSWORD, {
      headers: { authorization: `Bearer ${anonymous.body.session_id}` },
    });
    await t.http().post('/auth/logout').set('authorization', s.bearer).expect(200);
    // What the cleanup job does to a revoked session: the row goes, its session events stay.
    await t.dataSource.query(`DELETE FROM sessions WHERE id = '${sessionId}'`);
    const { receipt_id: receiptId } = await t.app.get(ErasureService).erase(s.userId, 'self', {
      actorType: 'user',
      actorUserId: s.userId,
      requestId: 'test',
    });
    const [left] = await t.dataSource.query(
      `SELECT COUNT(*) AS n FROM session_events WHERE session_id = '${sessionId}'`,
    );
    expect(Number(left.n)).toBe(0);
    const [receipt] = await t.dataSource.query(
      `SELECT counts, verified FROM erasure_receipts WHERE id = '${receiptId}'`,
    );
    // created, rotated and revoked of this session, created of the first.
    expect(JSON.parse(receipt.counts).session_events).toBe(4);
    expect(Boolean(receipt.verified)).toBe(true);
  });

  it('deletes everything about the user, leaves a receipt, and leaves others untouched', async () => {
    const admin = await loginAdmin(t);
    await register(t, 'bystander');
    const other = await populate('bystander');
    const otherBefore = await t
      .http()
      .get('/api/analytics/user')
      .set('authorization', other.bearer)
      .expect(200);
    const pagesBefore = await t
      .http()
      .get('/api/analytics/pages')
      .set('authorization', admin.bearer)
      .expect(200);

    await t
      .http()
      .post('/auth/register')
      .send({ username: 'forgetme', password: PASSWORD, email: 'forget.me@example.com' })
      .expect(201);
    const s = await populate('forgetme', '203.0.113.77');
    await t.app.get(EventWriter).drain();
    const res = await t
      .http()
      .delete('/api/gdpr/delete')
      .set('authorization', s.bearer)
      .expect(200);
    expect(res.body).toMatchObject({
      user_id: s.userId,
      sessions_deleted: 1,
      preferences_deleted: 1,
      consent_deleted: 1,
      receipt_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      verified: true,
    });
    expect(res.body.activities_deleted).toBeGreaterThanOrEqual(2);
    expect(([] as string[]).concat(res.headers['set-cookie'])[0]).toMatch(/^session_id=;/);
    expect(res.headers['clear-site-data']).toBe('"cookies"');

    // No table holds the id, username, e-mail or IP any more.
    await t.app.get(EventWriter).drain();
    for (const table of await allTables(t)) {
      const dump = JSON.stringify(await t.dataSource.query(`SELECT * FROM "${table}"`));
      // '203.0.113.0' is the address as tracking stored it (anonymised).
      for (const needle of [
        s.userId,
        'forgetme',
        'forget.me@example.com',
        s.sessionId,
        '203.0.113.77',
        '203.0.113.0',
      ]) {
        expect([table, dump.includes(needle)]).toEqual([table, false]);
      }
    }
    await t
      .http()
      .post('/auth/login')
      .send({ username: 'forgetme', password: PASSWORD })
      .expect(401);
    await t.http().get('/api/session').set('authorization', s.bearer).expect(401);

    const [receipt] = await t.dataSource.query(
      `SELECT * FROM erasure_receipts WHERE id = '${res.body.receipt_id}'`,
    );
    expect(receipt.requested_by).toBe('self');
    expect(JSON.parse(receipt.counts)).toMatchObject({
      accounts: 1,
      sessions: 1,
      consents: 1,
      preferences: 1,
    });

    // Another user's data and figures are unchanged.
    const otherAfter = await t
      .http()
      .get('/api/analytics/user')
      .set('authorization', other.bearer)
      .expect(200);
    expect(otherAfter.body.total_activities).toBeGreaterThanOrEqual(
      otherBefore.body.total_activities,
    );
    const pagesAfter = await t
      .http()
      .get('/api/analytics/pages')
      .set('authorization', admin.bearer)
      .expect(200);
    const mine = (body: { items: { page: string; views: number }[] }) =>
      body.items.find((p) => p.page === '/mine')?.views;
    expect(mine(pagesAfter.body)).toBe(mine(pagesBefore.body));
    await t.http().get('/api/session').set('authorization', other.bearer).expect(200);
  });

  it('lets admins erase a user (fresh auth), and audits it without personal data', async () => {
    const admin = await loginAdmin(t);
    const victim = await registerAndLogin(t, 'staff-erased');
    // Entries about the user: one the user made (their consent), one an admin made (an export).
    await t
      .http()
      .post('/api/consent')
      .set('authorization', victim.bearer)
      .send({ consent_type: 'marketing', granted: true })
      .expect(200);
    await t
      .http()
      .get(`/api/admin/users/${victim.userId}/export`)
      .set('authorization', admin.bearer)
      .expect(200);
    // The export's audit record is written asynchronously (an application event): poll briefly.
    let about: { id: number }[] = [];
    for (let i = 0; i < 100 && about.length < 2; i++) {
      if (i > 0) await sleep(10);
      about = await t.dataSource.query(
        `SELECT id FROM audit_log WHERE target_user_id = '${victim.userId}' AND action IN ('consent_change', 'export') ORDER BY id`,
      );
    }
    expect(about).toHaveLength(2);
    const res = await t
      .http()
      .delete(`/api/admin/users/${victim.userId}/data`)
      .set('authorization', admin.bearer)
      .expect(200);
    expect(res.body.user_id).toBe(victim.userId);
    // The user's own entry keeps no trace of them; the admin's keeps who acted, from where.
    const remaining = await t.dataSource.query(
      `SELECT action, actor_user_id, target_user_id, session_id FROM audit_log
       WHERE id IN (${about.map((r: { id: number }) => Number(r.id)).join(', ')}) ORDER BY id`,
    );
    expect(remaining).toEqual([
      { action: 'consent_change', actor_user_id: null, target_user_id: null, session_id: null },
      {
        action: 'export',
        actor_user_id: admin.userId,
        target_user_id: null,
        session_id: admin.sessionId,
      },
    ]);
    const audit = await t
      .http()
      .get('/api/admin/audit?action=erasure')
      .set('authorization', admin.bearer)
      .expect(200);
    const entry = audit.body.items.find(
      (a: { details: { receipt_id: string } }) => a.details.receipt_id === res.body.receipt_id,
    );
    expect(entry).toMatchObject({
      action: 'erasure',
      target_user_id: null,
      actor_user_id: admin.userId,
      details: { requested_by: 'admin' },
    });
    await t
      .http()
      .delete(`/api/admin/users/${victim.userId}/data`)
      .set('authorization', admin.bearer)
      .expect(404);
  });
});

if (TEST_DB_TYPE === 'sqlite') {
  describe('retention on a SQLite file', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ RETENTION_BATCH: '1000', RETENTION_EVENTS_DAYS: '30' });
    });
    afterAll(async () => {
      await t.close();
    });

    it('lets the WAL start over between batches instead of growing by each', async () => {
      // 20 batches of 1,000 old events with 500-character properties: about 20 MB of pages
      // that the deletions rewrite (secure_delete zeroes them too).
      const old = Date.now() - 40 * DAY;
      await t.dataSource.query(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO events (event_id, user_id, session_id, type, name, properties, occurred_at, received_at)
         SELECT 'wal-' || i, NULL, 'wal-session-' || (i / 100), 'action', 'old.thing',
           hex(randomblob(250)), ${old} + i, ${old} + i
         FROM n`,
      );
      const checkpointer = t.app.get(WalCheckpointer);
      expect(await checkpointer.purge()).toBe(true);
      const wal = `${t.app.get(AppConfig).database.path}-wal`;
      const counts = await t.app.get(DataRetentionService).run('manual');
      expect(counts?.events).toBe(20_000);
      const megabytes = statSync(wal).size / 1024 / 1024;
      expect(megabytes).toBeLessThan(8);
    });
  });
}

describe('retention and audit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...ADMIN_ENV,
      RETENTION_BATCH: '2',
      RETENTION_EVENTS_DAYS: '90',
      RETENTION_SESSION_EVENTS_DAYS: '180',
      RETENTION_AUDIT_DAYS: '730',
      RETENTION_IP_DAYS: '30',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('deletes exactly the rows past each policy, in batches, and records the run', async () => {
    const admin = await loginAdmin(t);
    const now = Date.now();
    const user = randomUUID();
    const session = randomUUID();
    await bulkEvents(t, user, session, 5, now - 91 * DAY);
    await bulkEvents(t, user, session, 3, now - 89 * DAY);
    for (const age of [181, 181, 179]) {
      await t.dataSource.query(
        `INSERT INTO session_events (session_id, user_id, type, reason, ip, created_at) VALUES ('${session}', NULL, 'created', NULL, '198.51.100.23', ${now - age * DAY})`,
      );
    }
    for (const age of [731, 729]) {
      await t.dataSource.query(
        `INSERT INTO audit_log (actor_type, actor_user_id, action, target_user_id, details, session_id, request_id, created_at) VALUES ('system', NULL, 'old_thing', NULL, NULL, NULL, NULL, ${now - age * DAY})`,
      );
    }
    const res = await t
      .http()
      .post('/api/admin/retention/run')
      .set('authorization', admin.bearer)
      .expect(200);
    // IPs: the 3 session events older than 30 days, now past their IP retention.
    expect(res.body).toEqual({
      status: 'completed',
      counts: { events: 5, session_events: 2, audit_log: 1, ips_anonymised: 1 },
    });
    const [{ n: events }] = await t.dataSource.query(
      `SELECT COUNT(*) AS n FROM events WHERE user_id = '${user}'`,
    );
    expect(Number(events)).toBe(3);
    const ips = await t.dataSource.query(
      `SELECT ip FROM session_events WHERE session_id = '${session}'`,
    );
    expect(ips).toEqual([{ ip: '198.51.100.0' }]);
    const again = await t
      .http()
      .post('/api/admin/retention/run')
      .set('authorization', admin.bearer)
      .expect(200);
    expect(again.body.counts).toEqual({
      events: 0,
      session_events: 0,
      audit_log: 0,
      ips_anonymised: 0,
    });
    const status = await t
      .http()
      .get('/api/admin/retention')
      .set('authorization', admin.bearer)
      .expect(200);
    expect(status.body.policies).toMatchObject({
      events_days: 90,
      session_events_days: 180,
      audit_days: 730,
      ip_days: 30,
      batch: 2,
    });
    expect(
      status.body.runs.map((r: { trigger: string; counts: { events: number } }) => [
        r.trigger,
        r.counts.events,
      ]),
    ).toEqual([
      ['manual', 0],
      ['manual', 5],
    ]);
  });

  it('anonymises an IPv6 address ending in :: unless it already is one (a /48 prefix)', async () => {
    const now = Date.now();
    const session = randomUUID();
    for (const ip of ['2001:db8:1:2::', '2001:db8:1::', 'fd00:a:b:c:d::', '2001:db8:1:2::9']) {
      await t.dataSource.query(
        `INSERT INTO session_events (session_id, user_id, type, reason, ip, created_at) VALUES ('${session}', NULL, 'created', NULL, '${ip}', ${now - 40 * DAY})`,
      );
    }
    const run = await t.app.get(DataRetentionService).run('manual', now);
    expect(run?.ips_anonymised).toBe(3);
    const ips: { ip: string }[] = await t.dataSource.query(
      `SELECT ip FROM session_events WHERE session_id = '${session}' ORDER BY id`,
    );
    expect(ips.map((row) => row.ip)).toEqual([
      '2001:db8:1::',
      '2001:db8:1::',
      'fd00:a:b::',
      '2001:db8:1::',
    ]);
  });

  it('runs with a pool of one connection (the job lock holds a session of its own)', async () => {
    const small = await startTestApp({ ...ADMIN_ENV, DB_POOL_MAX: '1' });
    try {
      const admin = await loginAdmin(small);
      const res = await small
        .http()
        .post('/api/admin/retention/run')
        .set('authorization', admin.bearer)
        .expect(200);
      expect(res.body.status).toBe('completed');
    } finally {
      await small.close();
    }
  });

  it('lets requests in between its batches', async () => {
    const now = Date.now();
    await bulkEvents(t, randomUUID(), randomUUID(), 7, now - 100 * DAY);
    const run = t.app.get(DataRetentionService).run('manual', now);
    expect(await turnedBefore(run)).toBe(true);
    expect((await run)?.events).toBe(7);
  });

  it('skips a run while another holds the retention lock, deleting nothing', async () => {
    const admin = await loginAdmin(t);
    const user = randomUUID();
    await bulkEvents(t, user, randomUUID(), 3, Date.now() - 100 * DAY);
    let release: (() => void) | undefined;
    const held = t.app
      .get(DatabaseService)
      .withJobLock('retention', () => new Promise<void>((resolve) => (release = resolve)));
    // Held once the work runs (on PostgreSQL after the lock's own session connected).
    while (!release) await sleep(5);
    try {
      const res = await t
        .http()
        .post('/api/admin/retention/run')
        .set('authorization', admin.bearer)
        .expect(200);
      expect(res.body).toEqual({ status: 'skipped: another run is in progress', counts: null });
      const [{ n }] = await t.dataSource.query(
        `SELECT COUNT(*) AS n FROM events WHERE user_id = '${user}'`,
      );
      expect(Number(n)).toBe(3);
    } finally {
      release();
      await held;
    }
    const after = await t
      .http()
      .post('/api/admin/retention/run')
      .set('authorization', admin.bearer)
      .expect(200);
    expect([after.body.status, after.body.counts.events]).toEqual(['completed', 3]);
  });

  it('pages the audit log by next_cursor, newest first, without gaps or repeats', async () => {
    const admin = await loginAdmin(t);
    const s = await registerAndLogin(t, 'audit-pager');
    for (const granted of [true, true, false]) {
      await t
        .http()
        .post('/api/consent')
        .set('authorization', s.bearer)
        .send({ consent_type: 'marketing', granted })
        .expect(200);
    }
    const { items, pageSizes } = await collectPages<{ id: number; details: { granted: boolean } }>(
      t,
      `/api/admin/audit?action=consent_change&user_id=${s.userId}&limit=1`,
      admin.bearer,
    );
    for (const size of pageSizes) expect(size).toBeLessThanOrEqual(1);
    const ids = items.map((item) => item.id);
    const grants = items.map((item) => item.details.granted);
    expect(grants).toEqual([false, true, true]); // newest first
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(3);
  });

  it('writes audit rows for each audited action', async () => {
    const admin = await loginAdmin(t);
    const s = await registerAndLogin(t, 'audited');
    await t
      .http()
      .patch('/api/preferences')
      .set('authorization', s.bearer)
      .send({ theme: 'dark' })
      .expect(200);
    await t
      .http()
      .post('/api/consent')
      .set('authorization', s.bearer)
      .send({ consent_type: 'analytics', granted: false })
      .expect(200);
    await t.http().get('/api/gdpr/export').set('authorization', s.bearer).expect(200);
    await t
      .http()
      .patch(`/api/admin/users/${s.userId}`)
      .set('authorization', admin.bearer)
      .send({ role: 'user' })
      .expect(200);
    await t
      .http()
      .delete(`/api/admin/users/${s.userId}/sessions`)
      .set('authorization', admin.bearer)
      .expect(200);
    // Audit records from application events are written asynchronously: poll briefly.
    const expected = [
      'admin_sessions_revoke',
      'admin_user_update',
      'consent_change',
      'export',
      'preference_change',
    ];
    let actions: string[] = [];
    let res: any;
    for (let i = 0; i < 40; i++) {
      res = await t
        .http()
        .get(`/api/admin/audit?user_id=${s.userId}`)
        .set('authorization', admin.bearer)
        .expect(200);
      actions = res.body.items.map((a: { action: string }) => a.action).sort();
      if (actions.length >= expected.length) break;
      await sleep(50);
    }
    expect(actions).toEqual(expected);
    const consent = res.body.items.find((a: { action: string }) => a.action === 'consent_change');
    expect(consent).toMatchObject({
      actor_type: 'user',
      actor_user_id: s.userId,
      session_id: s.sessionId,
      request_id: expect.any(String),
    });
    // Audit entries are written after the action (an event): poll until a run newer than
    // the newest before it appears (an earlier test's manual run may still be the newest).
    const newestRun = async () => {
      const res = await t
        .http()
        .get('/api/admin/audit?action=retention_run&limit=1')
        .set('authorization', admin.bearer)
        .expect(200);
      return res.body.items[0] as { id: number } | undefined;
    };
    const runAfter = async (action: () => Promise<unknown>) => {
      const before = (await newestRun())?.id ?? 0;
      await action();
      for (let i = 0; ; i++) {
        const entry = await newestRun();
        if ((entry && entry.id > before) || i >= 40) return entry;
        await sleep(50);
      }
    };
    // A manual run is the admin's who asked for it; a scheduled one the system's.
    const manual = await runAfter(() =>
      t.http().post('/api/admin/retention/run').set('authorization', admin.bearer).expect(200),
    );
    expect(manual).toMatchObject({
      actor_type: 'admin',
      actor_user_id: admin.userId,
      session_id: admin.sessionId,
      target_user_id: null,
      details: { trigger: 'manual' },
    });
    const scheduled = await runAfter(() => t.app.get(DataRetentionService).run('schedule'));
    expect(scheduled).toMatchObject({
      actor_type: 'system',
      actor_user_id: null,
      session_id: null,
      request_id: null,
      details: { trigger: 'schedule' },
    });

    // The log is the admins': a live non-admin session is refused.
    const reader = await registerAndLogin(t, 'audit-reader');
    const refused = await t
      .http()
      .get('/api/admin/audit')
      .set('authorization', reader.bearer)
      .expect(403);
    expect(refused.body.message).toBe('This operation needs the admin role');
  });

  it('publishes the record of processing to admins', async () => {
    const admin = await loginAdmin(t);
    const res = await t
      .http()
      .get('/api/compliance/processing')
      .set('authorization', admin.bearer)
      .expect(200);
    expect(res.body.consent_mode).toBe('opt-out');
    expect(
      res.body.purposes.find((p: { purpose: string }) => p.purpose === 'product analytics')
        .retention,
    ).toEqual({ events: '90 days' });
  });

  it('names the IP that analytics events keep, anonymised or not', () => {
    const categories = (env: Record<string, string>) =>
      processingRecord(loadConfig(env)).purposes.find((p) => p.purpose === 'product analytics')!
        .data_categories;
    expect(categories({})).toContain('anonymised IP');
    expect(categories({ IP_ANONYMIZATION: 'false' })).toEqual([
      'activity events (pages, actions, API requests)',
      'IP address',
      'user agent',
    ]);
  });
});
