import { Entity, PrimaryColumn } from 'typeorm';
import { EpochMsColumn, toNumber } from '../database/columns.js';

/** A scheduled run of a job that an instance claimed (migration 0011, ScheduledJobs). */
@Entity('job_slots')
export class JobSlot {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  job!: string;

  /** The cron time of the run, epoch ms: the same on every instance whatever its time zone (patterns are read in UTC) or small clock skew. */
  @PrimaryColumn({ name: 'slot_at', type: 'bigint', transformer: toNumber })
  slotAt!: number;

  @EpochMsColumn({ name: 'claimed_at' })
  claimedAt!: number;
}
