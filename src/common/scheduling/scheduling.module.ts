import { Global, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { JobSlot } from './job-slot.entity.js';
import { ScheduledJobs } from './scheduled-jobs.js';

/** The scheduler, and ScheduledJobs for the feature modules' configured cron jobs. */
@Global()
@Module({
  imports: [ScheduleModule.forRoot(), TypeOrmModule.forFeature([JobSlot])],
  providers: [ScheduledJobs],
  exports: [ScheduledJobs],
})
export class SchedulingModule {}
