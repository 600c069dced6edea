import { MIGRATIONS } from '../src/common/database/migrations';
import { startTestApp, TEST_DB_TYPE, TestApp } from './support/test-app';

describe('database schema', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
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
  }
});
