import { DynamicModule, Module, Type } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { AppController } from './app.controller.js';
import { AppConfig } from './common/config/config.js';
import { ConfigModule } from './common/config/config.module.js';
import { DatabaseModule } from './common/database/database.module.js';
import { AllExceptionsFilter } from './common/filters/all-exceptions.filter.js';
import { MethodRouter } from './common/http/method-router.js';
import { RedisThrottlerStorage } from './common/http/redis-throttler-storage.js';
import { SchedulingModule } from './common/scheduling/scheduling.module.js';
import { createValidationPipe } from './common/validation/validation.pipe.js';
import { AnalyticsModule } from './modules/analytics/analytics.module.js';
import { ComplianceModule } from './modules/compliance/compliance.module.js';
import { PreferencesModule } from './modules/preferences/preferences.module.js';
import { HealthModule } from './modules/health/health.module.js';
import { SessionModule } from './modules/session/session.module.js';
import { TrackingModule } from './modules/tracking/tracking.module.js';
import { UsersModule } from './modules/users/users.module.js';

@Module({})
export class AppModule {
  /**
   * The whole application for `config`. Tests pass their own configuration,
   * and may add modules of their own (`extraImports`) to probe the pipeline.
   */
  static forRoot(config: AppConfig, extraImports: Type[] = []): DynamicModule {
    // Shared counters when configured (several instances); else the throttler's own memory.
    // ThrottlerModule registers the store as a provider: its shutdown hook closes the connection.
    const rateLimitStore =
      config.rateLimit.max > 0 && config.rateLimit.redisUrl
        ? new RedisThrottlerStorage(config.rateLimit.redisUrl)
        : undefined;
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        EventEmitterModule.forRoot(),
        SchedulingModule,
        ThrottlerModule.forRoot({
          throttlers: [{ ttl: config.rateLimit.ttlS * 1000, limit: config.rateLimit.max }],
          storage: rateLimitStore,
          // The default names the exception class ("ThrottlerException: Too Many Requests").
          errorMessage: `Too many requests from this address to this route: at most ${config.rateLimit.max} per ${config.rateLimit.ttlS} s; retry after Retry-After`,
        }),
        HealthModule,
        UsersModule,
        SessionModule,
        TrackingModule,
        AnalyticsModule,
        PreferencesModule,
        ComplianceModule,
        ...extraImports,
      ],
      controllers: [AppController],
      providers: [
        MethodRouter,
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_FILTER, useClass: AllExceptionsFilter },
        // No guard at all when the limit is off: it would cost every request for nothing.
        ...(config.rateLimit.max > 0 ? [{ provide: APP_GUARD, useClass: ThrottlerGuard }] : []),
      ],
    };
  }
}
