import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnServer } from './support/spawn-server';

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

  it('exits 1 on a boolean that is not one', async () => {
    const result = await start({ TRUST_PROXY: 'maybe' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('TRUST_PROXY');
  });
});
