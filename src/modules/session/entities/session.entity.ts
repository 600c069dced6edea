import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { EpochMsColumn } from '../../../common/database/columns.js';
import { User } from '../../users/entities/user.entity.js';

/**
 * A server-side session. The secret token is never stored: only its SHA-256
 * (`token_hash`). `id` is the public session id used everywhere else.
 */
@Entity('sessions')
@Index('ix_sessions_idle_expires_at', ['idleExpiresAt'])
@Index('ix_sessions_absolute_expires_at', ['absoluteExpiresAt'])
@Index('ix_sessions_revoked_at', ['revokedAt'])
export class Session {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Index('uq_sessions_token_hash', { unique: true })
  @Column({ name: 'token_hash', type: 'varchar', length: 64, select: false })
  tokenHash!: string;

  /** Null while the session is anonymous. */
  @Index('ix_sessions_user_id')
  @Column({ name: 'user_id', type: 'varchar', length: 36, nullable: true })
  userId!: string | null;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: true })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_sessions_user' })
  user?: User | null;

  @EpochMsColumn({ name: 'created_at' })
  createdAt!: number;

  /** Written at most once per SESSION_TOUCH_INTERVAL_S. */
  @EpochMsColumn({ name: 'last_seen_at' })
  lastSeenAt!: number;

  @EpochMsColumn({ name: 'idle_expires_at' })
  idleExpiresAt!: number;

  @EpochMsColumn({ name: 'absolute_expires_at' })
  absoluteExpiresAt!: number;

  /** Last proof of the password (login, reauth); null for anonymous sessions. */
  @EpochMsColumn({ name: 'auth_time', nullable: true })
  authTime!: number | null;

  @Column({ name: 'remember_me', type: 'boolean' })
  rememberMe!: boolean;

  @Column({ type: 'varchar', length: 45, nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @EpochMsColumn({ name: 'revoked_at', nullable: true })
  revokedAt!: number | null;

  @Column({ name: 'revoked_reason', type: 'varchar', length: 32, nullable: true })
  revokedReason!: string | null;

  /**
   * An anonymous session upgraded at login whose anonymous events are not
   * attributed to the user yet (migration 0014; TrackingService clears it).
   */
  @Column({ name: 'stitch_pending', type: 'boolean', default: false })
  stitchPending!: boolean;
}
