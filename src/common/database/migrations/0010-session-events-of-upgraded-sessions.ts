import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Gives the session events an anonymous session wrote before its login (its
 * `created` row: address and time) the user it was upgraded to. Logins now
 * do this as they upgrade; before, those rows kept no user, so the user's
 * export left them out and, once cleanup had deleted the session row,
 * erasure could not find them. The user comes from the session's own later
 * rows (the login's `rotated` row), which outlive the session row.
 * UPDATE ... FROM, which both databases have: one pass with a join, not a
 * lookup per row (session_events has no index on session_id).
 */
export class SessionEventsOfUpgradedSessions1763800000010 implements MigrationInterface {
  name = 'SessionEventsOfUpgradedSessions1763800000010';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `UPDATE session_events SET user_id = owners.user_id
       FROM (
         SELECT session_id, MAX(user_id) AS user_id FROM session_events
         WHERE user_id IS NOT NULL GROUP BY session_id
       ) owners
       WHERE session_events.session_id = owners.session_id AND session_events.user_id IS NULL`,
    );
  }

  async down(): Promise<void> {
    // Nothing to undo: the rows are right either way, and which were backfilled is not kept.
  }
}
