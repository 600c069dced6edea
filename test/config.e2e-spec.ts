import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnServer } from './support/spawn-server';
import { loadConfig } from '../src/common/config/config';
import { SQLITE_BUSY_TIMEOUT_MS } from '../src/common/database/sqlite-connection';

describe('configuration validation at start-up', () => {
  let cwd: string;
  beforeAll(() => {
    cwd = mkdtempSync(path.join(tmpdir(), 'sas-config-'));
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  const start = (env: Record<string, string>) =>
    spawnServer({ CWD: cwd, DATABASE_PATH: path.join(cwd, 'app.db'), LOG_LEVEL: 'silent', ...env })
      .exited;

  it('exits 1 naming DB_TYPE and the allowed values when DB_TYPE=oracle', async () => {
    const result = await start({ DB_TYPE: 'oracle' });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('DB_TYPE');
    expect(lines[0]).toContain('"oracle"');
    expect(lines[0]).toBe(
      'Invalid configuration: DB_TYPE must be one of sqlite, postgres (got "oracle")',
    );
  });

  it('exits 1 naming PORT and its range when PORT=abc', async () => {
    const result = await start({ PORT: 'abc' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      'Invalid configuration: PORT must be an integer from 1 to 65535 (got "abc")',
    );
  });

  it('exits 1 when DB_TYPE=postgres comes without DATABASE_URL', async () => {
    const result = await start({ DB_TYPE: 'postgres' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('DATABASE_URL is required when DB_TYPE=postgres');
  });

  it('exits 1 when DATABASE_URL comes without DB_TYPE (it would quietly run on SQLite)', async () => {
    const result = await start({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/nowhere' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      'Invalid configuration: DATABASE_URL is set but DB_TYPE is not: set DB_TYPE=postgres to use it (or DB_TYPE=sqlite to ignore it)',
    );
  });

  it('exits 1 with one line when DATABASE_PATH cannot be opened (no retries, no stack trace)', async () => {
    const notADirectory = path.join(cwd, 'plain-file');
    writeFileSync(notADirectory, 'text');
    const notADatabase = path.join(cwd, 'notes.txt');
    writeFileSync(notADatabase, 'these are notes, not a SQLite database; '.repeat(10));
    for (const [file, reason] of [
      [path.join(notADirectory, 'app.db'), 'EEXIST'],
      [notADatabase, 'file is not a database'],
    ]) {
      const started = Date.now();
      const result = await start({ DATABASE_PATH: file, LOG_LEVEL: 'info' });
      expect([file, result.code]).toEqual([file, 1]);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      const prefix = `Invalid configuration: DATABASE_PATH "${file}" cannot be opened as a SQLite database: `;
      expect([lines[0].startsWith(prefix), lines[0].includes(reason)]).toEqual([true, true]);
      expect(Date.now() - started).toBeLessThan(15_000); // TypeORM's retries took 27 s
    }
  });

  it('exits 1 with one line when DATABASE_PATH is locked by another process or read-only', async () => {
    const locked = path.join(cwd, 'locked.db');
    const holder = new Database(locked);
    holder.exec('CREATE TABLE t (a); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)'); // rollback journal
    let result;
    try {
      result = await start({ DATABASE_PATH: locked, LOG_LEVEL: 'info' });
    } finally {
      holder.close();
    }
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      `Invalid configuration: DATABASE_PATH "${locked}" is locked by another process (waited ${SQLITE_BUSY_TIMEOUT_MS} ms): database is locked`,
    );

    // Immutable (chattr +i): even root cannot write it, as a read-only file stops other users.
    const readOnly = path.join(cwd, 'read-only.db');
    new Database(readOnly).exec('CREATE TABLE t (a)');
    execFileSync('chattr', ['+i', readOnly]);
    try {
      result = await start({ DATABASE_PATH: readOnly, LOG_LEVEL: 'info' });
    } finally {
      execFileSync('chattr', ['-i', readOnly]);
    }
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      `Invalid configuration: DATABASE_PATH "${readOnly}" cannot be written: attempt to write a readonly database`,
    );
  });

  it('exits 1 on a boolean that is not one', async () => {
    const result = await start({ TRUST_PROXY: 'maybe' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      'Invalid configuration: TRUST_PROXY must be false, true (one proxy), a number of proxies from 1 to 10, or comma-separated proxy addresses or CIDR ranges (got "maybe")',
    );
  });
});

describe('configuration values', () => {
  const error = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };

  it('reads TRUST_PROXY as no proxy, a number of proxies, or proxy addresses', () => {
    const trust = (value: string) => loadConfig({ TRUST_PROXY: value }).http.trustProxy;
    expect(trust('false')).toBe(false);
    expect(trust('true')).toBe(1);
    expect(trust('3')).toBe(3);
    expect(trust('10.0.0.0/8, 192.168.1.7, ::1, fd00::/8')).toEqual([
      '10.0.0.0/8',
      '192.168.1.7',
      '::1',
      'fd00::/8',
    ]);
    for (const bad of ['maybe', '11', '10.0.0.0/33', '::1/129', '10.0.0.1/8/1', 'proxy.local']) {
      expect(error({ TRUST_PROXY: bad })).toBe(
        `Invalid configuration: TRUST_PROXY must be false, true (one proxy), a number of proxies from 1 to 10, or comma-separated proxy addresses or CIDR ranges (got "${bad}")`,
      );
    }
  });

  it('refuses BODY_INFLIGHT_MAX_BYTES below BODY_LIMIT_BYTES (no largest body could pass)', () => {
    expect(error({ BODY_LIMIT_BYTES: '4096', BODY_INFLIGHT_MAX_BYTES: '2048' })).toBe(
      'Invalid configuration: BODY_INFLIGHT_MAX_BYTES must be at least BODY_LIMIT_BYTES (a body of the largest allowed size must fit)',
    );
    expect(error({ BODY_LIMIT_BYTES: '4096', BODY_INFLIGHT_MAX_BYTES: '4096' })).toBe('accepted');
  });

  it('takes RATE_LIMIT_REDIS_URL as a redis:// or rediss:// URL only', () => {
    for (const url of ['http://127.0.0.1:6379', 'localhost:6379', 'redis']) {
      expect(error({ RATE_LIMIT_REDIS_URL: url })).toBe(
        `Invalid configuration: RATE_LIMIT_REDIS_URL must be a URL like redis://host:6379 (or rediss:// for TLS) (got "${url}")`,
      );
    }
    expect(
      loadConfig({ RATE_LIMIT_REDIS_URL: 'rediss://cache.internal:6380/2' }).rateLimit.redisUrl,
    ).toBe('rediss://cache.internal:6380/2');
    expect(loadConfig({}).rateLimit.redisUrl).toBeNull();
  });

  it('refuses a blank DATABASE_PATH, which would be a throwaway database', () => {
    expect(error({ DATABASE_PATH: '' })).toBe(
      'Invalid configuration: DATABASE_PATH must be a file path (or :memory:) (got "")',
    );
    expect(error({ DATABASE_PATH: '  ' })).toContain('DATABASE_PATH must be a file path');
  });

  it('refuses an ADMIN_USERNAME that could never log in', () => {
    for (const name of ['x'.repeat(65), 'bad name!', 'ab']) {
      expect(error({ ADMIN_USERNAME: name, ADMIN_PASSWORD: 'long-enough-pw' })).toBe(
        `Invalid configuration: ADMIN_USERNAME must be 3-64 characters of A-Z, a-z, 0-9, ".", "_" or "-" (got "${name}")`,
      );
    }
    expect(error({ ADMIN_USERNAME: 'ops.admin-1', ADMIN_PASSWORD: 'long-enough-pw' })).toBe(
      'accepted',
    );
  });

  it('requires analytics among CONSENT_TYPES, each type once', () => {
    expect(error({ CONSENT_TYPES: 'marketing' })).toBe(
      'Invalid configuration: CONSENT_TYPES must include "analytics": it is the consent that tracking follows (got "marketing")',
    );
    expect(error({ CONSENT_TYPES: 'analytics,analytics' })).toBe(
      'Invalid configuration: CONSENT_TYPES must not name a type twice (got "analytics,analytics")',
    );
    expect(loadConfig({ CONSENT_TYPES: 'analytics, ads' }).compliance.consentTypes).toEqual([
      'analytics',
      'ads',
    ]);
  });

  it('keeps FEATURES names of Object members as plain features', () => {
    const features = loadConfig({ FEATURES: 'constructor=a.b;x=c' }).analytics.features;
    expect(Object.getPrototypeOf(features)).toBeNull();
    expect(features.constructor).toEqual(['a.b']);
    expect(Object.hasOwn(features, 'toString')).toBe(false);
  });
});
