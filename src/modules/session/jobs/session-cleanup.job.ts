import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { AppConfig } from '../../../common/config/config.js';
import { SessionCleanupService } from '../session-cleanup.service.js';

export const SESSION_CLEANUP_JOB = 'session-cleanup';

/** Runs the session cleanup on SESSION_CLEANUP_CRON (registered once config is loaded). */
@Injectable()
export class SessionCleanupJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(SessionCleanupJob.name);

  constructor(
    private readonly cleanup: SessionCleanupService,
    private readonly scheduler: SchedulerRegistry,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const job = CronJob.from({
      cronTime: this.config.session.cleanupCron,
      onTick: () => this.tick(),
      start: true,
      waitForCompletion: true,
    });
    this.scheduler.addCronJob(SESSION_CLEANUP_JOB, job);
  }

  private async tick(): Promise<void> {
    try {
      await this.cleanup.run();
    } catch (error) {
      this.logger.error(`Session cleanup failed: ${(error as Error).message}`);
    }
  }
}
