import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { DatabaseService } from '../src/common/database/database.service';
import { WalCheckpointer } from '../src/common/database/wal-checkpointer';
import { MIGRATIONS } from '../src/common/database/migrations';
import { SessionEventsOfUpgradedSessions1763800000010 } from '../src/common/database/migrations/0010-session-events-of-upgraded-sessions';
import { ADMIN_ENV, login, loginAdmin, registerAndLogin, sleep } from './support/auth';
import { startInstances, startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

describe('database schema', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(ADMIN_ENV);
  });
  afterAll(async () => {
    await t.close();
  });

  it('applies every migration at start-up', async () => {
    expect(await t.dataSource.showMigrations()).toBe(false);
    const rows: { name: string }[] = await t.dataSource.query('SELECT name FROM migrations');
    expect(rows.map((row) => row.name).sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
  });

  it('leaves no difference between the migrated schema and the entities', async () => {
    const pending = await t.dataSource.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('migration 0010 gives the rows of an upgraded session its user, and no other rows', async () => {
    const [upgraded, anonymous, owner] = [
      '5d1c0b5e-0000-4000-8000-000000000001',
      '5d1c0b5e-0000-4000-8000-000000000002',
      '5d1c0b5e-0000-4000-8000-0000000000aa',
    ];
    const row = (session: string, user: string | null, type: string) =>
      `('${session}', ${user ? `'${user}'` : 'NULL'}, '${type}', NULL, '198.51.100.9', 1)`;
    await t.dataSource.query(
      `INSERT INTO session_events (session_id, user_id, type, reason, ip, created_at) VALUES
       ${[row(upgraded, null, 'created'), row(upgraded, owner, 'rotated'), row(anonymous, null, 'created')].join(', ')}`,
    );
    const runner = t.dataSource.createQueryRunner();
    try {
      await new SessionEventsOfUpgradedSessions1763800000010().up(runner);
    } finally {
      await runner.release();
    }
    const rows: { session_id: string; user_id: string | null; type: string }[] =
      await t.dataSource.query(
        `SELECT session_id, user_id, type FROM session_events
         WHERE session_id IN ('${upgraded}', '${anonymous}') ORDER BY id`,
      );
    expect(rows).toEqual([
      { session_id: upgraded, user_id: owner, type: 'created' },
      { session_id: upgraded, user_id: owner, type: 'rotated' },
      { session_id: anonymous, user_id: null, type: 'created' },
    ]);
  });

  it('stores and pages through row ids past 32 bits (PostgreSQL integer ids ran out there)', async () => {
    const PAST_32_BITS = 2 ** 31 + 100;
    for (const table of ['events', 'session_events']) {
      if (TEST_DB_TYPE === 'postgres') {
        await t.dataSource.query(`SELECT setval('${table}_id_seq', ${PAST_32_BITS})`);
      } else {
        await t.dataSource.query(`DELETE FROM sqlite_sequence WHERE name = '${table}'`);
        await t.dataSource.query(
          `INSERT INTO sqlite_sequence (name, seq) VALUES ('${table}', ${PAST_32_BITS})`,
        );
      }
    }
    const user = await registerAndLogin(t, 'wide-ids');
    await login(t, 'wide-ids'); // a second session: its session event is a second page
    await t
      .http()
      .post('/api/track/page')
      .set('authorization', user.bearer)
      .send({ page: '/wide' })
      .expect(200);
    const [event]: { id: number; path: string }[] = await t.dataSource.query(
      `SELECT id, path FROM events WHERE user_id = '${user.userId}' AND type = 'page_view'`,
    );
    expect(event).toEqual({ id: expect.any(Number), path: '/wide' });
    expect(event.id).toBeGreaterThan(PAST_32_BITS);
    // A list's cursor holds such an id, and the next page reads past it.
    const admin = await loginAdmin(t);
    const first = await t
      .http()
      .get(`/api/admin/session-events?user_id=${user.userId}&limit=1`)
      .set('authorization', admin.bearer)
      .expect(200);
    expect(first.body.items).toHaveLength(1);
    const rest = await t
      .http()
      .get(`/api/admin/session-events?user_id=${user.userId}&cursor=${first.body.next_cursor}`)
      .set('authorization', admin.bearer)
      .expect(200);
    expect([...first.body.items, ...rest.body.items].map((e: { type: string }) => e.type)).toEqual([
      'created',
      'created',
    ]);
  });

  if (TEST_DB_TYPE === 'sqlite') {
    it('opens SQLite with WAL, synchronous=NORMAL, foreign keys and a busy timeout', async () => {
      const [journal] = await t.dataSource.query('PRAGMA journal_mode');
      const [sync] = await t.dataSource.query('PRAGMA synchronous');
      const [fk] = await t.dataSource.query('PRAGMA foreign_keys');
      const [busy] = await t.dataSource.query('PRAGMA busy_timeout');
      expect(journal.journal_mode).toBe('wal');
      expect(sync.synchronous).toBe(1);
      expect(fk.foreign_keys).toBe(1);
      expect(busy.timeout).toBe(5000);
    });

    it('checkpoints the WAL in a worker, never inside a commit of the main connection', async () => {
      const [auto] = await t.dataSource.query('PRAGMA wal_autocheckpoint');
      expect(auto.wal_autocheckpoint).toBe(0);
      const file = t.dataSource.options.database as string;
      const before = statSync(file).size;
      // About 2 MB of rows: the main connection alone would leave them all in the WAL.
      const padding = 'x'.repeat(1000);
      for (let batch = 0; batch < 4; batch++) {
        await t.app.get(DatabaseService).sqliteTransaction((db) => {
          const insert = db.prepare(
            `INSERT INTO events (event_id, type, name, properties, occurred_at, received_at)
             VALUES (?, 'custom', 'wal.test', ?, 0, 0)`,
          );
          for (let i = 0; i < 500; i++) insert.run(`wal-${batch}-${i}`, padding);
        });
      }
      for (let i = 0; i < 50 && statSync(file).size < before + 2_000_000; i++) await sleep(100);
      expect(statSync(file).size).toBeGreaterThan(before + 2_000_000);
    });

    it('turns automatic checkpoints back on when the checkpoint worker dies', async () => {
      const checkpointer: { worker?: Worker | null } = t.app.get(WalCheckpointer);
      const worker = checkpointer.worker!;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      await worker.terminate();
      await exited;
      const [auto] = await t.dataSource.query('PRAGMA wal_autocheckpoint');
      expect(auto.wal_autocheckpoint).toBe(1000);
    });
  }

  if (TEST_DB_TYPE === 'postgres') {
    it('lets several instances start at once on an empty database: one migrates, all come up', async () => {
      const { instances, close } = await startInstances(3);
      try {
        expect(instances).toHaveLength(3);
        const rows: { name: string }[] = await instances[0].dataSource.query(
          'SELECT name FROM migrations',
        );
        expect(rows.map((row) => row.name).sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
      } finally {
        await close();
      }
    });
  }
});
