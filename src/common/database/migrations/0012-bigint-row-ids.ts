import { MigrationInterface, QueryRunner } from 'typeorm';

/** The tables with a generated `id`. */
const TABLES = [
  'events',
  'session_events',
  'login_failures',
  'consents',
  'audit_log',
  'retention_runs',
];

/** Where the session rollup keeps event ids. */
const EVENT_ID_COLUMNS = ['entry_id', 'exit_id', 'items_id'];

/**
 * Row ids as 64-bit integers on PostgreSQL, where `integer` is 32-bit. An
 * `INSERT ... ON CONFLICT DO NOTHING` takes a sequence number even for the
 * duplicate it skips, so resent batches used up `events` ids with nothing
 * stored: at the default rate limit one client could exhaust the 2^31 ids
 * in about a day and a half, after which every event insert failed (and
 * at a sustained 1,000 events a second, stored ids alone run out within a
 * month). The session rollup's event ids widen with them. On SQLite an
 * INTEGER PRIMARY KEY is already the 64-bit rowid.
 *
 * Changing the column's type rewrites the table under an exclusive lock:
 * on a large `events` table this migration takes as long as copying it.
 */
export class BigintRowIds1763800000012 implements MigrationInterface {
  name = 'BigintRowIds1763800000012';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    for (const table of TABLES) {
      await queryRunner.query(`ALTER TABLE ${table} ALTER COLUMN id TYPE bigint`);
      await queryRunner.query(`ALTER SEQUENCE ${table}_id_seq AS bigint`);
    }
    await queryRunner.query(
      `ALTER TABLE session_summaries ${EVENT_ID_COLUMNS.map((c) => `ALTER COLUMN ${c} TYPE bigint`).join(', ')}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query(
      `ALTER TABLE session_summaries ${EVENT_ID_COLUMNS.map((c) => `ALTER COLUMN ${c} TYPE integer`).join(', ')}`,
    );
    for (const table of TABLES) {
      await queryRunner.query(`ALTER SEQUENCE ${table}_id_seq AS integer`);
      await queryRunner.query(`ALTER TABLE ${table} ALTER COLUMN id TYPE integer`);
    }
  }
}
