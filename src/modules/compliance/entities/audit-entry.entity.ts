import { Column, Entity, Index } from 'typeorm';
import { EpochMsColumn, RowIdColumn } from '../../../common/database/columns.js';

/** Append-only audit log. Never holds secrets; erasure removes the user ids it holds. */
@Entity('audit_log')
@Index('ix_audit_log_target_user_id_id', ['targetUserId', 'id'])
@Index('ix_audit_log_actor_user_id_id', ['actorUserId', 'id'])
@Index('ix_audit_log_action_id', ['action', 'id'])
@Index('ix_audit_log_created_at', ['createdAt'])
export class AuditEntry {
  @RowIdColumn()
  id!: number;

  /** `user`, `admin` or `system`. */
  @Column({ name: 'actor_type', type: 'varchar', length: 16 })
  actorType!: string;

  @Column({ name: 'actor_user_id', type: 'varchar', length: 36, nullable: true })
  actorUserId!: string | null;

  @Column({ type: 'varchar', length: 64 })
  action!: string;

  @Column({ name: 'target_user_id', type: 'varchar', length: 36, nullable: true })
  targetUserId!: string | null;

  /** JSON text with non-secret details. */
  @Column({ type: 'text', nullable: true })
  details!: string | null;

  @Column({ name: 'session_id', type: 'varchar', length: 36, nullable: true })
  sessionId!: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true })
  requestId!: string | null;

  @EpochMsColumn({ name: 'created_at' })
  createdAt!: number;
}
