import type { Logger } from '@nestjs/common';
import type { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';

/**
 * Registers a named cron job whose pattern comes from configuration (so it
 * cannot be a static `@Cron`). A failing run is logged, never thrown into the
 * scheduler, and runs never overlap in one process (`waitForCompletion`).
 */
export function registerCronJob(
  scheduler: SchedulerRegistry,
  name: string,
  cronTime: string,
  task: () => Promise<unknown>,
  logger: Logger,
): void {
  const job = CronJob.from({
    cronTime,
    onTick: async () => {
      try {
        await task();
      } catch (error) {
        logger.error(`Scheduled job "${name}" failed: ${(error as Error).message}`);
      }
    },
    start: true,
    waitForCompletion: true,
  });
  scheduler.addCronJob(name, job);
}
