import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * The rollup's user index also holds `first_at`: the DAU/WAU/MAU series
 * reads most users' sessions from it in user and time order, so its window
 * (each actor's previous active day) needs no sort of every actor-day
 * (AnalyticsService.activeSeries: the series' query took 85-105 ms of CPU
 * against 230 on a month of the 1M-event benchmark). It replaces the
 * one-column index, which served only lookups by user (erasure, exports),
 * as this one does: the writer maintains no more indexes than before.
 */
export class SessionSummaryUserIndex1763800000013 implements MigrationInterface {
  name = 'SessionSummaryUserIndex1763800000013';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('session_summaries', 'ix_session_summaries_user_id');
    await queryRunner.createIndex(
      'session_summaries',
      new TableIndex({
        name: 'ix_session_summaries_user_first',
        columnNames: ['user_id', 'first_at'],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('session_summaries', 'ix_session_summaries_user_first');
    await queryRunner.createIndex(
      'session_summaries',
      new TableIndex({ name: 'ix_session_summaries_user_id', columnNames: ['user_id'] }),
    );
  }
}
