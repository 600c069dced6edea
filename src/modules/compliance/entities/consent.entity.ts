import { Column, Entity, Index } from 'typeorm';
import { EpochMsColumn, RowIdColumn } from '../../../common/database/columns.js';

export const CONSENT_SOURCES = ['api', 'settings', 'admin', 'import'] as const;
export type ConsentSource = (typeof CONSENT_SOURCES)[number];

/** Append-only consent ledger: the latest row per (user, type) is the current state. */
@Entity('consents')
@Index('ix_consents_user_id_type_id', ['userId', 'consentType', 'id'])
export class Consent {
  @RowIdColumn()
  id!: number;

  @Column({ name: 'user_id', type: 'varchar', length: 36 })
  userId!: string;

  @Column({ name: 'consent_type', type: 'varchar', length: 64 })
  consentType!: string;

  @Column({ type: 'boolean' })
  granted!: boolean;

  @Column({ name: 'policy_version', type: 'varchar', length: 32, nullable: true })
  policyVersion!: string | null;

  @Column({ type: 'varchar', length: 16 })
  source!: ConsentSource;

  /** Public session id of the request that recorded it. */
  @Column({ name: 'session_id', type: 'varchar', length: 36, nullable: true })
  sessionId!: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true })
  requestId!: string | null;

  @EpochMsColumn({ name: 'created_at' })
  createdAt!: number;
}
