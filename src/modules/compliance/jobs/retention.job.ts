import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { AppConfig } from '../../../common/config/config.js';
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
    const job = CronJob.from({
      cronTime: this.config.compliance.retention.cron,
      onTick: () => this.tick(),
      start: true,
      waitForCompletion: true,
    });
    this.scheduler.addCronJob('retention', job);
  }

  private async tick(): Promise<void> {
    try {
      await this.retention.run('schedule');
    } catch (error) {
      this.logger.error(`Scheduled retention failed: ${(error as Error).message}`);
    }
  }
}
