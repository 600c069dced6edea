import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { EpochMsColumn } from '../../../common/database/columns.js';
import { User } from '../../users/entities/user.entity.js';

/**
 * One setting a user changed from its default, keyed by its dotted path
 * (`theme`, `notifications.email`). One row per leaf: concurrent updates of
 * different settings never overwrite each other.
 */
@Entity('user_preferences')
export class UserPreference {
  @PrimaryColumn({ name: 'user_id', type: 'varchar', length: 36 })
  userId!: string;

  @PrimaryColumn({ type: 'varchar', length: 64 })
  key!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_user_preferences_user' })
  user?: User;

  /** JSON text. */
  @Column({ type: 'text' })
  value!: string;

  @EpochMsColumn({ name: 'updated_at' })
  updatedAt!: number;
}
