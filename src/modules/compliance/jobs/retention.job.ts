import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../../../common/config/config.js';
import { registerCronJob } from '../../../common/scheduling/cron.js';
import { DataRetentionService } from '../data-retention.service.js';

/** Runs the retention policies on RETENTION_CRON. */
@Injectable()
export class RetentionJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(RetentionJob.name);

  constructor(
    private readonly retention: DataRetentionService,
    private readonly scheduler: SchedulerRegistry,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    registerCronJob(
      this.scheduler,
      'retention',
      this.config.compliance.retention.cron,
      () => this.retention.run('schedule'),
      this.logger,
    );
  }
}
