import { Column, Entity, PrimaryColumn } from 'typeorm';
import { EpochMsColumn } from '../../../common/database/columns.js';

/** Proof that an erasure happened, with no personal data in it. */
@Entity('erasure_receipts')
export class ErasureReceipt {
  /** Random id, unrelated to the erased user. */
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** `self` or `admin`. */
  @Column({ name: 'requested_by', type: 'varchar', length: 16 })
  requestedBy!: string;

  /** JSON: rows deleted per category. */
  @Column({ type: 'text' })
  counts!: string;

  /** True when a check after the deletion found no row holding the user id. */
  @Column({ type: 'boolean' })
  verified!: boolean;

  @EpochMsColumn({ name: 'started_at' })
  startedAt!: number;

  @EpochMsColumn({ name: 'finished_at' })
  finishedAt!: number;
}
