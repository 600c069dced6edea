import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { rebuildAllSummaries } from '../../../modules/tracking/session-summaries.js';

/**
 * Each session's path in its summary row (see SessionSummaries, `items`):
 * transitions and patterns read one JSON array per session instead of
 * sorting every event of the range by session and time. Then every summary
 * is rebuilt from the events already stored (also the backfill of 0005).
 */
export class SessionPaths1763800000007 implements MigrationInterface {
  name = 'SessionPaths1763800000007';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumns('session_summaries', [
      new TableColumn({ name: 'items', type: 'text', isNullable: true }),
      new TableColumn({ name: 'items_at', type: 'bigint', isNullable: true }),
      new TableColumn({ name: 'items_id', type: 'integer', isNullable: true }),
    ]);
    await rebuildAllSummaries(
      (sql) => queryRunner.query(sql),
      queryRunner.connection.options.type === 'postgres',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumns('session_summaries', ['items', 'items_at', 'items_id']);
  }
}
