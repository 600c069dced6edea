import { Global, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/config.js';
import { useSqliteRowIds } from './columns.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { DatabaseService } from './database.service.js';
import { WalCheckpointer } from './wal-checkpointer.js';

/** The advisory lock that lets one instance at a time migrate a PostgreSQL database. */
const MIGRATION_LOCK = 'schema-migrations';

/**
 * The one database connection. Migrations run at start-up (MIGRATIONS_RUN),
 * followed by ANALYZE on SQLite so the planner has statistics: without them
 * analytics queries pick poor indexes (see DESIGN.md). Work that needs the
 * schema at start-up belongs in `onApplicationBootstrap`, which runs after this.
 */
@Global()
@Module({
  providers: [DatabaseService, WalCheckpointer],
  exports: [DatabaseService, WalCheckpointer],
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        ...buildDataSourceOptions(config.database),
        autoLoadEntities: true,
        // A SQLite file that fails to open will not open on a retry (the default: 9 more,
        // 3 s apart); a PostgreSQL server may still be starting.
        ...(config.database.type === 'sqlite' ? { retryAttempts: 0 } : {}),
      }),
    }),
  ],
})
export class DatabaseModule {
  private readonly logger = new Logger(DatabaseModule.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    private readonly database: DatabaseService,
  ) {
    if (dataSource.options.type === 'better-sqlite3') useSqliteRowIds(dataSource);
  }

  async onModuleInit(): Promise<void> {
    if (!this.config.database.migrationsRun) return;
    const applied = await this.migrateAlone();
    if (applied.length > 0) {
      this.logger.log(
        `Applied ${applied.length} migration(s): ${applied.map((m) => m.name).join(', ')}`,
      );
    }
    if (this.dataSource.options.type === 'better-sqlite3') {
      await this.dataSource.query('PRAGMA optimize');
      if (applied.length > 0) await this.dataSource.query('ANALYZE');
    }
  }

  /**
   * Runs the pending migrations. On PostgreSQL, under an advisory lock held
   * on a connection of its own: instances started at the same time on an
   * empty database would otherwise run the same migrations at once, and all
   * but one would fail start-up (`relation ... already exists`). The others
   * wait, then find nothing pending. The lock's session is outside the
   * pool (see DatabaseService.withLockSession).
   */
  private async migrateAlone() {
    if (this.dataSource.options.type !== 'postgres') {
      return this.dataSource.runMigrations({ transaction: 'each' });
    }
    return this.database.withLockSession(async (lock) => {
      await lock.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
      return this.dataSource.runMigrations({ transaction: 'each' });
    });
  }
}
