import { MigrationInterface, QueryRunner, Table } from 'typeorm';

/**
 * `job_slots`: one row per scheduled run of a job (its cron time) that an
 * instance claimed. Several instances on one PostgreSQL database each tick
 * their own cron; the first to insert a slot runs it, the others skip it
 * (see ScheduledJobs). The advisory job lock alone only kept runs from
 * overlapping: an instance whose clock ran a little behind ran the same
 * tick again once the first run had ended.
 */
export class JobSlots1763800000011 implements MigrationInterface {
  name = 'JobSlots1763800000011';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'job_slots',
        columns: [
          { name: 'job', type: 'varchar', length: '64', isPrimary: true },
          { name: 'slot_at', type: 'bigint', isPrimary: true },
          { name: 'claimed_at', type: 'bigint' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('job_slots');
  }
}
