import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UsersModule } from '../users/users.module.js';
import { SessionModule } from '../session/session.module.js';
import { ActivitiesController } from './activities.controller.js';
import { Event } from './entities/event.entity.js';
import { EventWriter } from './event-writer.js';
import { LiveStreamController } from './live-stream.controller.js';
import { LiveEventStream } from './live-stream.service.js';
import { SessionActivityListener } from './session-activity.listener.js';
import { TrackingController } from './tracking.controller.js';
import { RequestTracker } from './request-tracker.js';
import { TrackingPolicy } from './tracking-policy.js';
import { TrackingService } from './tracking.service.js';
import { SessionSummaries } from './session-summaries.service.js';
import { SessionSummary } from './entities/session-summary.entity.js';

/** Events: ingestion, automatic request tracking, the group-commit writer, history, live stream. */
@Module({
  // UsersModule: the admin activity route's ExistingUserPipe.
  imports: [SessionModule, UsersModule, TypeOrmModule.forFeature([Event, SessionSummary])],
  controllers: [TrackingController, LiveStreamController, ActivitiesController],
  providers: [
    EventWriter,
    LiveEventStream,
    TrackingPolicy,
    TrackingService,
    SessionSummaries,
    SessionActivityListener,
    RequestTracker,
  ],
  exports: [TrackingService, TrackingPolicy, EventWriter, SessionSummaries],
})
export class TrackingModule {}
