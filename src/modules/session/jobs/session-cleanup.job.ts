import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../../../common/config/config.js';
import { ScheduledJobs } from '../../../common/scheduling/scheduled-jobs.js';
import { SessionCleanupService } from '../session-cleanup.service.js';

export const SESSION_CLEANUP_JOB = 'session-cleanup';

/** Runs the session cleanup on SESSION_CLEANUP_CRON (registered once config is loaded). */
@Injectable()
export class SessionCleanupJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(SessionCleanupJob.name);

  constructor(
    private readonly cleanup: SessionCleanupService,
    private readonly jobs: ScheduledJobs,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.jobs.register(
      SESSION_CLEANUP_JOB,
      this.config.session.cleanupCron,
      () => this.cleanup.run(),
      this.logger,
    );
  }
}
