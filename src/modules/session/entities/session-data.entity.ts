import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { EpochMsColumn } from '../../../common/database/columns.js';
import { Session } from './session.entity.js';

/** One key of a session's state: one row per key, so writers of different keys never collide. */
@Entity('session_data')
export class SessionData {
  @PrimaryColumn({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  key!: string;

  @ManyToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'fk_session_data_session' })
  session?: Session;

  /** The value as JSON text. */
  @Column({ type: 'text' })
  value!: string;

  /** UTF-8 bytes of `value`, summed for the per-session limit. */
  @Column({ type: 'integer' })
  size!: number;

  @EpochMsColumn({ name: 'updated_at' })
  updatedAt!: number;
}
