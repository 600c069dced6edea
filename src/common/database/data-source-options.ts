import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { types } from 'pg';
import type { DataSourceOptions } from 'typeorm';
import Database from 'better-sqlite3';
import { ConfigError } from '../config/env.js';
import type { AppConfig } from '../config/config.js';
import { MIGRATIONS } from './migrations/index.js';
import { SQLITE_BUSY_TIMEOUT_MS, sqliteConnectionPragmas } from './sqlite-connection.js';

/**
 * Makes sure the SQLite file at `file` can be opened and written (created,
 * with its directory, when missing), or throws a ConfigError naming
 * DATABASE_PATH and the reason. Checking here once costs a few milliseconds;
 * found later, inside Nest's start-up, the same failures printed a stack
 * trace. The check applies the connections' own PRAGMAs (switching to WAL
 * writes the file) and takes the write lock once, waiting the same busy
 * timeout, so a read-only file and one locked by another process fail here.
 */
export function prepareSqliteFile(file: string): void {
  if (file === ':memory:') return;
  const invalid = (problem: string, error: unknown) => {
    const locked = (error as { code?: string }).code?.startsWith('SQLITE_BUSY');
    return new ConfigError(
      `Invalid configuration: DATABASE_PATH "${file}" ${locked ? `is locked by another process (waited ${SQLITE_BUSY_TIMEOUT_MS} ms)` : problem}: ${(error as Error).message}`,
    );
  };
  let db: Database.Database;
  try {
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    db = new Database(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  } catch (error) {
    throw invalid('cannot be opened as a SQLite database', error);
  }
  try {
    db.pragma('user_version'); // reads the header: "file is not a database" shows here
  } catch (error) {
    db.close();
    throw invalid('cannot be opened as a SQLite database', error);
  }
  try {
    for (const pragma of sqliteConnectionPragmas()) db.pragma(pragma);
    db.exec('BEGIN IMMEDIATE; ROLLBACK');
  } catch (error) {
    throw invalid('cannot be written', error);
  } finally {
    db.close();
  }
}

/**
 * TypeORM options for either database. Entities are not listed here: each
 * feature module registers its own with `forFeature` and Nest's
 * `autoLoadEntities` collects them. Migrations are listed as classes (not
 * globs) so the same options work from `src/` under Jest and from `dist/`.
 */
export function buildDataSourceOptions(database: AppConfig['database']): DataSourceOptions {
  const common = {
    migrations: MIGRATIONS,
    migrationsRun: false, // run explicitly at start-up, see DatabaseModule
    synchronize: false,
    // TypeORM's logger prints failing queries with their parameters (tokens, hashes):
    // errors surface as exceptions instead, logged without parameters.
    logging: false,
  };
  if (database.type === 'postgres') {
    // int8 (bigint columns, COUNT(*)) as numbers: epoch milliseconds and counts stay
    // far below 2^53, and both databases then return the same JavaScript types.
    types.setTypeParser(types.builtins.INT8, (value: string) => Number(value));
    return {
      ...common,
      type: 'postgres',
      url: database.url,
      extra: { max: database.poolMax },
    };
  }
  prepareSqliteFile(database.path);
  return {
    ...common,
    type: 'better-sqlite3',
    database: database.path,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    prepareDatabase: (db: { pragma(sql: string): unknown }) => {
      for (const pragma of sqliteConnectionPragmas()) db.pragma(pragma);
    },
  };
}
