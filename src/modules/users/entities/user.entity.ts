import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import type { Role } from '../../../common/auth/auth-context.js';
import { EpochMsColumn } from '../../../common/database/columns.js';

@Entity('users')
@Index('ix_users_created_at_id', ['createdAt', 'id'])
export class User {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** As the user typed it at registration. */
  @Column({ type: 'varchar', length: 64 })
  username!: string;

  /** Lower-cased username: uniqueness and login are case-insensitive. */
  @Index('uq_users_username_lower', { unique: true })
  @Column({ name: 'username_lower', type: 'varchar', length: 64 })
  usernameLower!: string;

  @Column({ type: 'varchar', length: 254, nullable: true })
  email!: string | null;

  /** scrypt hash with its parameters (see PasswordHasher); never selected by default. */
  @Column({ name: 'password_hash', type: 'varchar', length: 255, select: false })
  passwordHash!: string;

  @Column({ type: 'varchar', length: 16 })
  role!: Role;

  @Column({ type: 'boolean' })
  disabled!: boolean;

  @EpochMsColumn({ name: 'created_at' })
  createdAt!: number;

  @EpochMsColumn({ name: 'updated_at' })
  updatedAt!: number;
}
