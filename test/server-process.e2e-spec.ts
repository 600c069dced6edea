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

  it('serves requests, logs no secret, then exits 0 on SIGTERM', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const server = spawnServer({
      CWD: cwd,
      PORT: port,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      PASSWORD_HASH_COST: '10',
      ...database.env,
    });
    await waitForOutput(server.output, (text) => text.includes('Listening on'));
    if (database.env.DATABASE_PATH) expect(existsSync(database.env.DATABASE_PATH)).toBe(true);

    const base = `http://127.0.0.1:${port}`;
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);

    // Exercise every way a secret travels: password in a body, token in the
    // login response, cookie, bearer, X-Session-ID, and an error response.
    const password = 'a very secret password';
    const json = { 'content-type': 'application/json' };
    await fetch(`${base}/auth/register`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ username: 'logged', password }),
    });
    const login = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ username: 'logged', password }),
    });
    const { session_id: token, session } = (await login.json()) as {
      session_id: string;
      session: { id: string };
    };
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await fetch(`${base}/api/session`, { headers: { cookie: `session_id=${token}` } });
    await fetch(`${base}/api/session`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${base}/api/admin/users`, { headers: { 'x-session-id': token } });
    await fetch(`${base}/api/me?session_id=${token}`);
    await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ username: 'logged', password: `${password}!` }),
    });

    const { createHash } = await import('node:crypto');
    const logs = server.output().stdout;
    expect(logs).toContain(session.id); // the public id is what logs correlate on
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(createHash('sha256').update(token).digest('hex'));
    expect(logs).not.toContain(password);
    const forbidden = logs
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === 'request completed' && line.route === '/api/admin/users');
    expect(forbidden).toMatchObject({ session_id: session.id, res: { status: 403 } });
    expect(typeof forbidden?.request_id).toBe('string');

    server.child.kill('SIGTERM');
    const result = await server.exited;
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Received SIGTERM; shutting down');
  });
});
