import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { generatedId, cascadingForeignKey } from './columns.js';

/** Accounts, sessions, session state, session events and login failures. */
export class UsersAndSessions1763800000001 implements MigrationInterface {
  name = 'UsersAndSessions1763800000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'users',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'username', type: 'varchar', length: '64' },
          { name: 'username_lower', type: 'varchar', length: '64' },
          { name: 'email', type: 'varchar', length: '254', isNullable: true },
          { name: 'password_hash', type: 'varchar', length: '255' },
          { name: 'role', type: 'varchar', length: '16' },
          { name: 'disabled', type: 'boolean' },
          { name: 'created_at', type: 'bigint' },
          { name: 'updated_at', type: 'bigint' },
        ],
        indices: [
          { name: 'uq_users_username_lower', columnNames: ['username_lower'], isUnique: true },
          { name: 'ix_users_created_at_id', columnNames: ['created_at', 'id'] },
        ],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'sessions',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'token_hash', type: 'varchar', length: '64' },
          { name: 'user_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'created_at', type: 'bigint' },
          { name: 'last_seen_at', type: 'bigint' },
          { name: 'idle_expires_at', type: 'bigint' },
          { name: 'absolute_expires_at', type: 'bigint' },
          { name: 'auth_time', type: 'bigint', isNullable: true },
          { name: 'remember_me', type: 'boolean' },
          { name: 'ip', type: 'varchar', length: '45', isNullable: true },
          { name: 'user_agent', type: 'varchar', length: '512', isNullable: true },
          { name: 'revoked_at', type: 'bigint', isNullable: true },
          { name: 'revoked_reason', type: 'varchar', length: '32', isNullable: true },
        ],
        indices: [
          { name: 'uq_sessions_token_hash', columnNames: ['token_hash'], isUnique: true },
          { name: 'ix_sessions_user_id', columnNames: ['user_id'] },
          { name: 'ix_sessions_idle_expires_at', columnNames: ['idle_expires_at'] },
          { name: 'ix_sessions_absolute_expires_at', columnNames: ['absolute_expires_at'] },
          { name: 'ix_sessions_revoked_at', columnNames: ['revoked_at'] },
        ],
        foreignKeys: [cascadingForeignKey('fk_sessions_user', 'user_id', 'users')],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'session_data',
        columns: [
          { name: 'session_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'key', type: 'varchar', length: '128', isPrimary: true },
          { name: 'value', type: 'text' },
          { name: 'size', type: 'integer' },
          { name: 'updated_at', type: 'bigint' },
        ],
        foreignKeys: [cascadingForeignKey('fk_session_data_session', 'session_id', 'sessions')],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'session_events',
        columns: [
          generatedId,
          { name: 'session_id', type: 'varchar', length: '36' },
          { name: 'user_id', type: 'varchar', length: '36', isNullable: true },
          { name: 'type', type: 'varchar', length: '16' },
          { name: 'reason', type: 'varchar', length: '32', isNullable: true },
          { name: 'ip', type: 'varchar', length: '45', isNullable: true },
          { name: 'created_at', type: 'bigint' },
        ],
        indices: [
          new TableIndex({ name: 'ix_session_events_user_id_id', columnNames: ['user_id', 'id'] }),
          new TableIndex({ name: 'ix_session_events_created_at', columnNames: ['created_at'] }),
        ],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'login_failures',
        columns: [
          generatedId,
          { name: 'key_hash', type: 'varchar', length: '64' },
          { name: 'failed_at', type: 'bigint' },
        ],
        indices: [
          {
            name: 'ix_login_failures_key_hash_failed_at',
            columnNames: ['key_hash', 'failed_at'],
          },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['login_failures', 'session_events', 'session_data', 'sessions', 'users']) {
      await queryRunner.dropTable(table);
    }
  }
}
