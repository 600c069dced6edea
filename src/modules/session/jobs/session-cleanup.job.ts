import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../../../common/config/config.js';
import { registerCronJob } from '../../../common/scheduling/cron.js';
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
    registerCronJob(
      this.scheduler,
      SESSION_CLEANUP_JOB,
      this.config.session.cleanupCron,
      () => this.cleanup.run(),
      this.logger,
    );
  }
}
