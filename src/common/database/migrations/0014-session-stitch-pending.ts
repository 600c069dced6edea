import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `sessions.stitch_pending`: set in the login transaction that upgrades an
 * anonymous session, cleared in the transaction that attributes its
 * anonymous events to the user (TrackingService). Stitching runs after the
 * login committed, so a crash in between left a user's session whose
 * events stayed anonymous for good (missing from the user's activities and
 * export, not deleted when the user does not allow analytics); start-up
 * finishes what the flag says was left undone.
 *
 * Plain `ALTER TABLE ... ADD COLUMN` on both databases: TypeORM's addColumn
 * rebuilds a SQLite table, and dropping `sessions` inside the migration's
 * transaction (where foreign keys cannot be switched off) would cascade
 * into session_data.
 */
export class SessionStitchPending1763800000014 implements MigrationInterface {
  name = 'SessionStitchPending1763800000014';

  async up(queryRunner: QueryRunner): Promise<void> {
    const no = queryRunner.connection.options.type === 'postgres' ? 'false' : '0';
    await queryRunner.query(
      `ALTER TABLE sessions ADD COLUMN stitch_pending boolean NOT NULL DEFAULT ${no}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE sessions DROP COLUMN stitch_pending');
  }
}
