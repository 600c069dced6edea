import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { generatedId, cascadingForeignKey } from './columns.js';

/** Preferences, the consent ledger, the audit log, erasure receipts and retention runs. */
export class PreferencesAndCompliance1763800000003 implements MigrationInterface {
  name = 'PreferencesAndCompliance1763800000003';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'user_preferences',
        columns: [
          { name: 'user_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'key', type: 'varchar', length: '64', isPrimary: true },
          { name: 'value', type: 'text' },
          { name: 'updated_at', type: 'bigint' },
        ],
        foreignKeys: [cascadingForeignKey('fk_user_preferences_user', 'user_id', 'users')],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'consents',
        columns: [
          generatedId,
          { name: 'user_id', type: 'varchar', length: '36' },
          { name: 'consent_type', type: 'varchar', length: '64' },
          { name: 'granted', type: 'boolean' },
          { name: 'policy_version', type: 'varchar', length: '32', isNullable: true },
          { name: 'source', type: 'varchar', length: '16' },
          { name: 'session_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'request_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'created_at', type: 'bigint' },
        ],
        indices: [
          { name: 'ix_consents_user_id_type_id', columnNames: ['user_id', 'consent_type', 'id'] },
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'audit_log',
        columns: [
          generatedId,
          { name: 'actor_type', type: 'varchar', length: '16' },
          { name: 'actor_user_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'action', type: 'varchar', length: '64' },
          { name: 'target_user_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'details', type: 'text', isNullable: true },
          { name: 'session_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'request_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'created_at', type: 'bigint' },
        ],
        indices: [
          { name: 'ix_audit_log_target_user_id_id', columnNames: ['target_user_id', 'id'] },
          { name: 'ix_audit_log_actor_user_id_id', columnNames: ['actor_user_id', 'id'] },
          { name: 'ix_audit_log_action_id', columnNames: ['action', 'id'] },
          { name: 'ix_audit_log_created_at', columnNames: ['created_at'] },
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'erasure_receipts',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'requested_by', type: 'varchar', length: '16' },
          { name: 'counts', type: 'text' },
          { name: 'verified', type: 'boolean' },
          { name: 'started_at', type: 'bigint' },
          { name: 'finished_at', type: 'bigint' },
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'retention_runs',
        columns: [
          generatedId,
          { name: 'trigger', type: 'varchar', length: '16' },
          { name: 'counts', type: 'text' },
          { name: 'error', type: 'text', isNullable: true },
          { name: 'started_at', type: 'bigint' },
          { name: 'finished_at', type: 'bigint' },
        ],
        indices: [{ name: 'ix_retention_runs_started_at', columnNames: ['started_at'] }],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'retention_runs',
      'erasure_receipts',
      'audit_log',
      'consents',
      'user_preferences',
    ]) {
      await queryRunner.dropTable(table);
    }
  }
}
