import { DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig, loadConfig } from './config.js';

/**
 * Provides AppConfig everywhere. `forRoot(config)` lets the bootstrap (and
 * tests) pass the configuration they already validated, so the environment
 * is read exactly once per application.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig = loadConfig()): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: AppConfig, useValue: config }],
      exports: [AppConfig],
    };
  }
}
