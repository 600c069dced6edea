import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * Events by (type, name, time): feature adoption and funnel steps look up
 * actions by name over all time; without it they scan every action event.
 * Appends of automatic events land at the end of their (type, name) run, so
 * the extra index costs the writer little.
 */
export class EventsNameIndex1763800000004 implements MigrationInterface {
  name = 'EventsNameIndex1763800000004';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex(
      'events',
      new TableIndex({
        name: 'ix_events_type_name_occurred_at',
        columnNames: ['type', 'name', 'occurred_at'],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('events', 'ix_events_type_name_occurred_at');
  }
}
