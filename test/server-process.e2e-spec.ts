import { request } from 'node:http';
import { connect } from 'node:net';
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
    const refused = await fetch(`${base}/api/admin/users`, { headers: { 'x-session-id': token } });
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
    expect(forbidden).toMatchObject({ session_id: session.id, status: 403, method: 'GET' });
    // Request loggers are built on first use (lazyRequestLogger): still bound to the request id.
    expect(forbidden?.request_id).toBe(refused.headers.get('x-request-id'));

    server.child.kill('SIGTERM');
    const result = await server.exited;
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Received SIGTERM; shutting down');
  });

  it('loses no acknowledged event when SIGTERM arrives during a burst of tracking', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const server = spawnServer({
      CWD: cwd,
      PORT: port,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      PASSWORD_HASH_COST: '10',
      RATE_LIMIT_MAX: '0',
      ...database.env,
    });
    const base = `http://127.0.0.1:${port}`;
    const json = { 'content-type': 'application/json' };
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/health`)).ok) break;
      } catch {
        if (i > 200) throw new Error('server did not start');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await fetch(`${base}/auth/register`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ username: 'burst', password: 'burst-password' }),
    });
    const login = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ username: 'burst', password: 'burst-password' }),
    });
    const { session_id: token } = (await login.json()) as { session_id: string };
    const headers = { ...json, authorization: `Bearer ${token}` };

    const acknowledged: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        try {
          const res = await fetch(`${base}/api/track/action`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ action: `burst.w${w}.n${i}` }),
          });
          if (res.status === 200) {
            const body = (await res.json()) as { event_id: string };
            acknowledged.push(body.event_id);
          } else {
            await res.arrayBuffer();
          }
        } catch {
          stop = true; // connection refused: the server is gone
        }
      }
    };
    const workers = Array.from({ length: 20 }, (_, w) => worker(w));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A request whose body is still arriving holds the shutdown's drain open until it ends,
    // so the second signal below surely lands while the first one drains.
    const held = request({
      port: Number(port),
      host: '127.0.0.1',
      method: 'POST',
      path: '/api/track/action',
      headers: { ...headers, 'content-length': 30 },
    });
    const heldAnswer = new Promise<number>((resolve) => {
      held.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      held.on('error', () => resolve(0));
    });
    held.write('{"action":"burst.');
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.child.kill('SIGTERM');
    // A second signal while the first drains (systemd and npm send them): ignored, not fatal.
    // Sent once the listener is closed (shutdown has begun), not after a fixed wait: a
    // shutdown quicker than the wait had already exited.
    const refused = () =>
      new Promise<boolean>((resolve) => {
        const probe = connect(Number(port), '127.0.0.1');
        probe.once('connect', () => {
          probe.destroy();
          resolve(false);
        });
        probe.once('error', () => resolve(true));
      });
    while (!(await refused())) await new Promise((resolve) => setTimeout(resolve, 1));
    server.child.kill('SIGTERM');
    held.end('held"}       '); // 30 bytes in all: the drain can finish
    expect(await heldAnswer).toBe(200);
    const result = await server.exited;
    stop = true;
    await Promise.all(workers);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Received SIGTERM again; still shutting down');
    expect(acknowledged.length).toBeGreaterThan(20);

    const stored = new Set(await readActionEventIds(database.env));
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
  });

  it('drops a body still arriving at shutdown in time for the drain, and exits 0', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const server = spawnServer({
      CWD: cwd,
      PORT: port,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info', // for 'Listening on'
      PASSWORD_HASH_COST: '10',
      // Bodies may take 30 s to arrive (the default), the whole shutdown only 3 s.
      SHUTDOWN_TIMEOUT_MS: '3000',
      ...database.env,
    });
    await waitForOutput(server.output, (text) => text.includes('Listening on'));
    // A client that declared 100 bytes, sent 15, and sends nothing more.
    const slow = request({
      port: Number(port),
      host: '127.0.0.1',
      method: 'POST',
      path: '/auth/login',
      headers: { 'content-type': 'application/json', 'content-length': 100 },
    });
    const dropped = new Promise<string>((resolve) => {
      slow.on('response', (res) => resolve(`answered ${res.statusCode}`));
      slow.on('error', () => resolve('dropped'));
    });
    slow.write('{"username":"s');
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.child.kill('SIGTERM');
    const result = await server.exited;
    expect(await dropped).toBe('dropped');
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    // Dropped at half the shutdown timeout: the drain and the database's close then ran
    // (a shutdown past SHUTDOWN_TIMEOUT_MS exits 1 without them).
    expect(result.stdout).not.toContain('Shutdown took longer');
  });
});

/** Event ids of stored actions, read straight from the database file or server. */
async function readActionEventIds(env: Record<string, string>): Promise<string[]> {
  if (env.DATABASE_PATH) {
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(env.DATABASE_PATH, { readonly: true });
    try {
      return (
        db.prepare("SELECT event_id FROM events WHERE type = 'action'").all() as {
          event_id: string;
        }[]
      ).map((r) => r.event_id);
    } finally {
      db.close();
    }
  }
  const { Client } = await import('pg');
  const client = new Client({ connectionString: env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ event_id: string }>(
      "SELECT event_id FROM events WHERE type = 'action'",
    );
    return rows.map((r) => r.event_id);
  } finally {
    await client.end();
  }
}
