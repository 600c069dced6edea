import { Module } from '@nestjs/common';
import { AnalyticsController } from './analytics.controller.js';
import { AnalyticsReader } from './analytics-reader.js';
import { AnalyticsService } from './analytics.service.js';
import { BehaviourService } from './behaviour.service.js';
import { FunnelService } from './funnel.service.js';
import { ReportService } from './report.service.js';
import { RetentionService } from './retention.service.js';
import { UserAnalyticsController } from './user-analytics.controller.js';

/** Read-only analytics over the events table (owned by tracking; read here through SQL only). */
@Module({
  controllers: [UserAnalyticsController, AnalyticsController],
  providers: [
    AnalyticsReader,
    AnalyticsService,
    BehaviourService,
    FunnelService,
    RetentionService,
    ReportService,
  ],
})
export class AnalyticsModule {}
