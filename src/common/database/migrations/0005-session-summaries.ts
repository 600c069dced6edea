import { MigrationInterface, QueryRunner, Table } from 'typeorm';

/**
 * The per-session rollup the event writer maintains (see SessionSummaries).
 * It is filled from the events already stored by the last migration that
 * changes the table (0007 now), because the backfill uses the live rebuild
 * SQL, which matches only the table's latest shape.
 */
export class SessionSummaries1763800000005 implements MigrationInterface {
  name = 'SessionSummaries1763800000005';

  async up(queryRunner: QueryRunner): Promise<void> {
    const count = (name: string) => ({ name, type: 'integer' });
    await queryRunner.createTable(
      new Table({
        name: 'session_summaries',
        columns: [
          { name: 'session_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'user_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'first_at', type: 'bigint' },
          { name: 'last_at', type: 'bigint' },
          count('logins'),
          count('logouts'),
          count('page_views'),
          count('actions'),
          count('api_requests'),
          count('errors'),
          count('customs'),
          { name: 'entry_at', type: 'bigint', isNullable: true },
          { name: 'entry_id', type: 'integer', isNullable: true },
          { name: 'entry_path', type: 'varchar', length: '2048', isNullable: true },
          { name: 'exit_at', type: 'bigint', isNullable: true },
          { name: 'exit_id', type: 'integer', isNullable: true },
          { name: 'exit_path', type: 'varchar', length: '2048', isNullable: true },
        ],
        indices: [
          { name: 'ix_session_summaries_first_at', columnNames: ['first_at'] },
          { name: 'ix_session_summaries_last_at', columnNames: ['last_at'] },
          { name: 'ix_session_summaries_user_id', columnNames: ['user_id'] },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('session_summaries');
  }
}
