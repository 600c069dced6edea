import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../../../common/config/config.js';
import { ScheduledJobs } from '../../../common/scheduling/scheduled-jobs.js';
import { DataRetentionService } from '../data-retention.service.js';

/** Runs the retention policies on RETENTION_CRON. */
@Injectable()
export class RetentionJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(RetentionJob.name);

  constructor(
    private readonly retention: DataRetentionService,
    private readonly jobs: ScheduledJobs,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.jobs.register(
      'retention',
      this.config.compliance.retention.cron,
      () => this.retention.run('schedule'),
      this.logger,
    );
  }
}
