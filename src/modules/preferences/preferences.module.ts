import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TrackingModule } from '../tracking/tracking.module.js';
import { UserPreference } from './entities/user-preference.entity.js';
import { PreferencesController } from './preferences.controller.js';
import { PreferencesService } from './preferences.service.js';

/** Typed preferences with defaults, categories and privacy settings. */
@Module({
  imports: [TypeOrmModule.forFeature([UserPreference]), TrackingModule],
  controllers: [PreferencesController],
  providers: [PreferencesService],
  exports: [PreferencesService],
})
export class PreferencesModule {}
