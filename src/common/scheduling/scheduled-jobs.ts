import { Injectable, Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob, CronTime } from 'cron';
import { DatabaseService } from '../database/database.service.js';

/** How long claimed slots are kept: far longer than any two instances' clocks differ. */
const SLOT_HISTORY_MS = 24 * 60 * 60 * 1000;

/**
 * The time zone of every cron pattern: the instances' slots must be the same
 * instants whatever zone each machine is set to (`0 3 * * *` is 03:00 UTC).
 */
export const CRON_TIME_ZONE = 'UTC';

/**
 * How many skipped ticks `slotOf` steps over at most: a job ticking every
 * second whose process was suspended for days must not block the event
 * loop for seconds (a step costs about 0.2 ms).
 */
export const SLOT_SEARCH_LIMIT = 1_000;

/**
 * The cron time a tick stands for: the latest time of `cronTime` at or
 * before `now`, starting from `expected` (the time the job was armed for).
 * Usually `expected` itself; later when ticks were skipped (a run still
 * going, an event loop blocked past the time). Past SLOT_SEARCH_LIMIT
 * skipped ticks it stops at the one reached: still a cron time, so at worst
 * an instance claims an older slot than the others, and runs once more.
 */
export function slotOf(cronTime: CronTime, expected: number, now: number): number {
  let slot = expected;
  for (let step = 0; step < SLOT_SEARCH_LIMIT; step++) {
    const next = cronTime.getNextDateFrom(new Date(slot)).toMillis();
    if (next > now || next <= slot) return slot;
    slot = next;
  }
  return slot;
}

/**
 * Cron jobs whose pattern comes from configuration (so they cannot be a
 * static `@Cron`), run once per tick across every instance of the service.
 *
 * Each instance ticks its own cron. Before running, a tick claims its slot,
 * the cron time it stands for, in `job_slots`; the instance that inserts it
 * runs, the others skip. The slot is the cron time, not the clock at the
 * tick, so instances whose clocks differ a little still agree on it. The
 * jobs' own advisory locks (DatabaseService.withJobLock) keep a manual run
 * and a scheduled one from overlapping; they could not keep a second
 * instance, ticking a moment later, from running the same slot again.
 *
 * A failing run is logged, never thrown into the scheduler, and runs never
 * overlap in one process (`waitForCompletion`). A run cut short (its instance
 * crashed) is not taken over: its slot stays claimed, and the next tick does
 * the work, since every job here catches up on all that is due (retention
 * deletes everything past its window, cleanup every expired session).
 */
@Injectable()
export class ScheduledJobs {
  constructor(
    private readonly scheduler: SchedulerRegistry,
    private readonly database: DatabaseService,
  ) {}

  register(name: string, cronTime: string, task: () => Promise<unknown>, logger: Logger): void {
    let expected = 0;
    const job = CronJob.from({
      cronTime,
      onTick: async () => {
        const slot = slotOf(job.cronTime, expected, Date.now());
        expected = job.nextDate().toMillis();
        try {
          if (await this.claim(name, slot)) await task();
        } catch (error) {
          logger.error(`Scheduled job "${name}" failed: ${(error as Error).message}`);
        }
      },
      start: false,
      timeZone: CRON_TIME_ZONE,
      waitForCompletion: true,
    });
    expected = job.nextDate().toMillis();
    job.start();
    this.scheduler.addCronJob(name, job);
  }

  /** Claims `slot` of job `name` for this instance: false when another instance has it. */
  claim(name: string, slot: number): Promise<boolean> {
    return this.database.transaction(async (manager) => {
      const claimed = await this.database.query(
        `INSERT INTO job_slots (job, slot_at, claimed_at) VALUES (?, ?, ?)
         ON CONFLICT (job, slot_at) DO NOTHING RETURNING job`,
        [name, slot, Date.now()],
        manager,
      );
      if (claimed.length === 0) return false;
      await this.database.query(
        'DELETE FROM job_slots WHERE job = ? AND slot_at < ?',
        [name, slot - SLOT_HISTORY_MS],
        manager,
      );
      return true;
    });
  }
}
