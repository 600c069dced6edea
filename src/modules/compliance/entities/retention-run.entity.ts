import { Column, Entity, Index } from 'typeorm';
import { EpochMsColumn, RowIdColumn } from '../../../common/database/columns.js';

/** One run of the retention job. */
@Entity('retention_runs')
@Index('ix_retention_runs_started_at', ['startedAt'])
export class RetentionRun {
  @RowIdColumn()
  id!: number;

  /** `schedule` or `manual`. */
  @Column({ type: 'varchar', length: 16 })
  trigger!: string;

  /** JSON: rows per category. */
  @Column({ type: 'text' })
  counts!: string;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @EpochMsColumn({ name: 'started_at' })
  startedAt!: number;

  @EpochMsColumn({ name: 'finished_at' })
  finishedAt!: number;
}
