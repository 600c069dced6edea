import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * Fewer index entries per event, and a covering index for action names.
 *
 * - `(type, name, occurred_at)` held an entry for every event, although only
 *   named events (actions, custom events) are ever looked up by name. It is
 *   replaced by a partial index on actions alone, ordered by name and holding
 *   the actors, so the per-action breakdown, feature adoption and action
 *   matchers of retention read the index without fetching table rows
 *   (1M-event benchmark, 30 days: event breakdown 203 -> 159 ms, features
 *   184 -> 119 ms, retention with action matchers 115 -> 64 ms; the others
 *   unchanged). Custom events by name go through `(type, occurred_at)`:
 *   there are few of them.
 * - The dedupe key's unique index covers only the rows that have a key:
 *   server-made events (every automatic api_request) have none, and each
 *   one added a NULL entry. Inserts name the index's predicate in
 *   `ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL`, which both
 *   databases require to use a partial unique index as the conflict target.
 *
 * Together: an api_request event is written to 4 indexes instead of 6,
 * about 14% less time per inserted row (measured with better-sqlite3).
 */
export class LeanerEventIndexes1763800000009 implements MigrationInterface {
  name = 'LeanerEventIndexes1763800000009';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('events', 'ix_events_type_name_occurred_at');
    await queryRunner.dropIndex('events', 'uq_events_dedupe_key');
    await queryRunner.createIndices('events', [
      new TableIndex({
        name: 'ix_events_actions',
        columnNames: ['name', 'occurred_at', 'user_id', 'session_id'],
        where: "type = 'action'",
      }),
      new TableIndex({
        name: 'uq_events_dedupe_key',
        columnNames: ['dedupe_key'],
        isUnique: true,
        where: 'dedupe_key IS NOT NULL',
      }),
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('events', 'uq_events_dedupe_key');
    await queryRunner.dropIndex('events', 'ix_events_actions');
    await queryRunner.createIndices('events', [
      new TableIndex({ name: 'uq_events_dedupe_key', columnNames: ['dedupe_key'], isUnique: true }),
      new TableIndex({
        name: 'ix_events_type_name_occurred_at',
        columnNames: ['type', 'name', 'occurred_at'],
      }),
    ]);
  }
}
