import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TrackingModule } from '../tracking/tracking.module.js';
import { HealthController } from './health.controller.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), TrackingModule],
  controllers: [HealthController],
})
export class HealthModule {}
