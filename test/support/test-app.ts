import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory';
import { loadConfig } from '../../src/common/config/config';

/** Database used by the e2e suite: `npm run test:pg` sets DB_TYPE=postgres. */
export const TEST_DB_TYPE = process.env.DB_TYPE === 'postgres' ? 'postgres' : 'sqlite';
const TEST_PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database of the test's own: a temporary SQLite file, or a uniquely named PostgreSQL database. */
export interface TestDatabase {
  env: Record<string, string>;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (TEST_DB_TYPE === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'sas-e2e-'));
    return {
      env: { DB_TYPE: 'sqlite', DATABASE_PATH: path.join(dir, 'app.db') },
      drop: () => {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  }
  const name = `sas_e2e_${Date.now()}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return {
    env: { DB_TYPE: 'postgres', DATABASE_URL: url.toString() },
    drop: async () => {
      const client = new Client({ connectionString: TEST_PG_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface TestApp {
  app: NestFastifyApplication;
  http: () => ReturnType<typeof request>;
  dataSource: DataSource;
  /** Closes the application (if still open) and drops its database. */
  close(): Promise<void>;
}

function testConfig(database: TestDatabase, env: Record<string, string>) {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    // Cheap hashing and no general rate limit keep tests fast; tests of those override them.
    PASSWORD_HASH_COST: '10',
    RATE_LIMIT_MAX: '0',
    ...database.env,
    ...env,
  });
}

function wrap(app: NestFastifyApplication): Omit<TestApp, 'close'> {
  return { app, http: () => request(app.getHttpServer()), dataSource: app.get(DataSource) };
}

/**
 * Several instances of the app on one fresh database, started at the same
 * time (as a deployment starts them). `close` closes them all and drops the
 * database. Rejects if any instance fails to start.
 */
export async function startInstances(
  count: number,
  env: Record<string, string> = {},
): Promise<{ instances: Omit<TestApp, 'close'>[]; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const config = testConfig(database, env);
  const started = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const app = await createApp(config);
      await app.getHttpAdapter().getInstance().ready();
      return app;
    }),
  );
  const apps = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const close = async () => {
    await Promise.all(apps.map((app) => app.close()));
    await database.drop();
  };
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await close();
    throw failed.reason;
  }
  return { instances: apps.map(wrap), close };
}

/**
 * Boots the real AppModule with real migrations on a fresh database. `env`
 * overrides configuration (short timeouts and the like); the process
 * environment is not consulted except for DB_TYPE / TEST_PG_URL.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  extraImports: Type[] = [],
): Promise<TestApp> {
  const database = await createTestDatabase();
  const app = await createApp(testConfig(database, env), extraImports);
  await app.getHttpAdapter().getInstance().ready();
  let closed = false;
  return {
    ...wrap(app),
    close: async () => {
      if (!closed) {
        closed = true;
        await app.close();
      }
      await database.drop();
    },
  };
}
