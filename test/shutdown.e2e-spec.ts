import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, TestDatabase } from './support/test-app';
import { spawnServer, waitForOutput } from './support/spawn-server';

describe('server process', () => {
  let cwd: string;
  let database: TestDatabase;
  beforeAll(async () => {
    cwd = mkdtempSync(path.join(tmpdir(), 'sas-shutdown-'));
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('serves requests, then exits 0 on SIGTERM after finishing', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const server = spawnServer({
      CWD: cwd,
      PORT: port,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...database.env,
    });
    await waitForOutput(server.output, (text) => text.includes('Listening on'));
    if (database.env.DATABASE_PATH) expect(existsSync(database.env.DATABASE_PATH)).toBe(true);

    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);

    server.child.kill('SIGTERM');
    const result = await server.exited;
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Received SIGTERM; shutting down');
  });
});
