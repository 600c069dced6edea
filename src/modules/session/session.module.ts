import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UsersModule } from '../users/users.module.js';
import { AdminSessionsController } from './admin-sessions.controller.js';
import { AuthController } from './auth.controller.js';
import { LoginFailure } from './entities/login-failure.entity.js';
import { SessionData } from './entities/session-data.entity.js';
import { SessionEvent } from './entities/session-event.entity.js';
import { Session } from './entities/session.entity.js';
import { SessionCleanupJob } from './jobs/session-cleanup.job.js';
import { LoginThrottleService } from './login-throttle.service.js';
import { SessionCleanupService } from './session-cleanup.service.js';
import { SessionDataService } from './session-data.service.js';
import { SessionEventsService } from './session-events.service.js';
import { SessionController } from './session.controller.js';
import { SessionGuard } from './session.guard.js';
import { SessionService } from './session.service.js';
import { SessionRetentionService } from './session-retention.service.js';
import { SessionsController } from './sessions.controller.js';
import { UserDisabledListener } from './user-disabled.listener.js';

/** Login/logout/reauth, sessions and their state, the global session guard, cleanup. */
@Module({
  imports: [
    UsersModule,
    TypeOrmModule.forFeature([Session, SessionData, SessionEvent, LoginFailure]),
  ],
  controllers: [AuthController, SessionController, SessionsController, AdminSessionsController],
  providers: [
    SessionService,
    SessionDataService,
    SessionEventsService,
    LoginThrottleService,
    SessionCleanupService,
    SessionRetentionService,
    SessionCleanupJob,
    UserDisabledListener,
    { provide: APP_GUARD, useClass: SessionGuard },
  ],
  exports: [SessionService, SessionDataService, SessionEventsService, SessionRetentionService],
})
export class SessionModule {}
