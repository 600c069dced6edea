import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { generatedId } from './columns.js';

/** The activity events table and the indexes analytics reads through. */
export class Events1763800000002 implements MigrationInterface {
  name = 'Events1763800000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'events',
        columns: [
          generatedId,
          { name: 'event_id', type: 'varchar', length: '64' },
          { name: 'dedupe_key', type: 'varchar', length: '112', isNullable: true },
          { name: 'user_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'session_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'type', type: 'varchar', length: '16' },
          { name: 'name', type: 'varchar', length: '128', isNullable: true },
          { name: 'path', type: 'varchar', length: '2048', isNullable: true },
          { name: 'properties', type: 'text', isNullable: true },
          { name: 'ip', type: 'varchar', length: '45', isNullable: true },
          { name: 'user_agent', type: 'varchar', length: '512', isNullable: true },
          { name: 'occurred_at', type: 'bigint' },
          { name: 'received_at', type: 'bigint' },
        ],
        indices: [
          { name: 'uq_events_dedupe_key', columnNames: ['dedupe_key'], isUnique: true },
          { name: 'ix_events_user_id_occurred_at', columnNames: ['user_id', 'occurred_at'] },
          { name: 'ix_events_session_id_occurred_at', columnNames: ['session_id', 'occurred_at'] },
          { name: 'ix_events_type_occurred_at', columnNames: ['type', 'occurred_at'] },
          { name: 'ix_events_occurred_at', columnNames: ['occurred_at'] },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('events');
  }
}
