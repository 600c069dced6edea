import { Column, Entity, Index } from 'typeorm';
import { EpochMsColumn, RowIdColumn } from '../../../common/database/columns.js';

/**
 * A failed login, for throttling per username + IP. Kept in the database so
 * every app instance sees the same count. `key_hash` = SHA-256 of the
 * lower-cased username and the IP: no personal data in clear.
 */
@Entity('login_failures')
@Index('ix_login_failures_key_hash_failed_at', ['keyHash', 'failedAt'])
export class LoginFailure {
  @RowIdColumn()
  id!: number;

  @Column({ name: 'key_hash', type: 'varchar', length: 64 })
  keyHash!: string;

  @EpochMsColumn({ name: 'failed_at' })
  failedAt!: number;
}
