import type { MigrationInterface } from 'typeorm';

/**
 * Every migration, in order. Each is written with the QueryRunner schema API
 * (createTable, createIndex) so one file serves SQLite and PostgreSQL.
 */
export const MIGRATIONS: (new () => MigrationInterface)[] = [];
