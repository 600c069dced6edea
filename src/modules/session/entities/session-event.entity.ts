import { Column, Entity, Index } from 'typeorm';
import { EpochMsColumn, RowIdColumn } from '../../../common/database/columns.js';

export const SESSION_EVENT_TYPES = ['created', 'rotated', 'renewed', 'revoked', 'expired'] as const;
export type SessionEventType = (typeof SESSION_EVENT_TYPES)[number];

export const REVOKE_REASONS = [
  'logout',
  'user',
  'admin',
  'password_change',
  'evicted',
  'disabled',
] as const;
export type RevokeReason = (typeof REVOKE_REASONS)[number];

/**
 * Append-only security log of session lifecycle changes. No foreign keys:
 * rows outlive the sessions they describe (cleanup deletes sessions).
 */
@Entity('session_events')
@Index('ix_session_events_user_id_id', ['userId', 'id'])
@Index('ix_session_events_created_at', ['createdAt'])
export class SessionEvent {
  @RowIdColumn()
  id!: number;

  @Column({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  @Column({ name: 'user_id', type: 'varchar', length: 36, nullable: true })
  userId!: string | null;

  @Column({ type: 'varchar', length: 16 })
  type!: SessionEventType;

  /** Why: a RevokeReason for `revoked`, `login`/`reauth`/`password_change` for `rotated`. */
  @Column({ type: 'varchar', length: 32, nullable: true })
  reason!: string | null;

  @Column({ type: 'varchar', length: 45, nullable: true })
  ip!: string | null;

  @EpochMsColumn({ name: 'created_at' })
  createdAt!: number;
}
