import { gzipSync } from 'node:zlib';
import { randomInt } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { AddressInfo, connect } from 'node:net';
import { ProbeModule } from './support/probe.module';
import { startTestApp, TestApp } from './support/test-app';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Asserts the one error shape and returns the body. */
function expectErrorShape(body: Record<string, unknown>, status: number, error: string) {
  expect(body.status_code).toBe(status);
  expect(body.error).toBe(error);
  expect(typeof body.message).toBe('string');
  expect((body.message as string).length).toBeGreaterThan(0);
  expect(typeof body.request_id).toBe('string');
  expect(body.session_id).toBeNull();
  return body;
}

describe('error responses', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ BODY_LIMIT_BYTES: '2048' }, [ProbeModule]);
  });
  afterAll(async () => {
    await t.close();
  });
  /** POSTs `body` to the probe as JSON, its text or bytes as they are. */
  const postJson = (body: string | Buffer) =>
    t
      .http()
      .post('/probe/echo')
      .set('content-type', 'application/json')
      .serialize((raw: string | Buffer) => raw as string)
      .send(body);

  it('answers an unknown route with a JSON 404', async () => {
    const res = await t.http().get('/no/such/route?x=1').expect(404);
    expectErrorShape(res.body, 404, 'Not Found');
    expect(res.body.message).toBe('No route for GET /no/such/route');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });

  it('answers a wrong method with 405 and an Allow header', async () => {
    const res = await t.http().delete('/health').expect(405);
    expectErrorShape(res.body, 405, 'Method Not Allowed');
    expect(res.body.message).toBe('Method DELETE is not allowed on this path; allowed: GET, HEAD');
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it('answers malformed JSON with 400', async () => {
    const res = await postJson('{"count": 1,').expect(400);
    expectErrorShape(res.body, 400, 'Bad Request');
    expect(res.body.message).toMatch(/^Malformed JSON body: /);
  });

  it('answers valid JSON with a prototype-polluting key with 400 naming the key, not the syntax', async () => {
    for (const body of [
      '{"a": 1, "__proto__": {"x": 1}}',
      '{"constructor": {"prototype": {"x": 1}}}',
    ]) {
      const res = await postJson(body).expect(400);
      expectErrorShape(res.body, 400, 'Bad Request');
      expect(res.body.message).toBe(
        'Body contains a forbidden key: __proto__, or prototype inside constructor',
      );
    }
  });

  it('answers a number beyond a double (1e309) with 400 instead of storing it as null', async () => {
    for (const body of [
      '{"count": 1e309}',
      '{"count": 1, "items": [{"name": "a", "deep": [-1e400]}]}',
      `{"count": ${'9'.repeat(400)}}`,
    ]) {
      const res = await postJson(body).expect(400);
      expectErrorShape(res.body, 400, 'Bad Request');
      expect(res.body.message).toBe(
        'Body contains a number too large to be represented (like 1e309)',
      );
    }
    // Text that only looks like such a number passes.
    const passing = await postJson('{"count": 2, "items": [{"name": "1e309"}]}').expect(201);
    expect(passing.body).toEqual({ count: 2, items: 1 });
  });

  it('answers a body that is not valid UTF-8 with 400, not with U+FFFD stored in its place', async () => {
    const body = Buffer.concat([
      Buffer.from('{"count": 1, "items": [{"name": "caf'),
      Buffer.from([0xe9]), // Latin-1 é: not UTF-8
      Buffer.from('"}]}'),
    ]);
    const res = await postJson(body).expect(400);
    expectErrorShape(res.body, 400, 'Bad Request');
    expect(res.body.message).toBe('Body is not valid UTF-8');
    const valid = await postJson(Buffer.from('{"count": 1, "items": [{"name": "café"}]}')).expect(
      201,
    );
    expect(valid.body).toEqual({ count: 1, items: 1 });
  });

  it('answers a compressed body with 415 naming the encoding', async () => {
    const res = await t
      .http()
      .post('/probe/echo')
      .set('content-type', 'application/json')
      .set('content-encoding', 'gzip')
      .send(gzipSync('{"count": 1, "items": []}'))
      .expect(415);
    expectErrorShape(res.body, 415, 'Unsupported Media Type');
    expect(res.body.message).toBe(
      'Content-Encoding "gzip" is not supported: send the body uncompressed',
    );
    await t
      .http()
      .post('/probe/echo')
      .set('content-type', 'application/json')
      .set('content-encoding', 'identity')
      .send('{"count": 1, "items": []}')
      .expect(201);
  });

  it('answers a non-JSON content type with 415', async () => {
    const res = await t
      .http()
      .post('/probe/echo')
      .set('content-type', 'text/plain')
      .send('count=1')
      .expect(415);
    expectErrorShape(res.body, 415, 'Unsupported Media Type');
    expect(res.body.message).toBe('Unsupported Media Type: send application/json');
  });

  it('answers form and multipart bodies with 415, also on the login route', async () => {
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'count=1'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\ncontent-disposition: form-data; name="count"\r\n\r\n1\r\n--x--\r\n',
      ],
    ]) {
      const echo = await t.http().post('/probe/echo').set('content-type', type).send(body);
      expect(echo.status).toBe(415);
      expectErrorShape(echo.body, 415, 'Unsupported Media Type');
      expect(echo.body.message).toBe('Unsupported Media Type: send application/json');
    }
    // A form posted from another site cannot sign anyone in (login CSRF).
    const login = await t
      .http()
      .post('/auth/login')
      .set('content-type', 'application/x-www-form-urlencoded')
      .send('username=someone&password=some-password')
      .expect(415);
    expectErrorShape(login.body, 415, 'Unsupported Media Type');
    expect(login.headers['set-cookie']).toBeUndefined();
  });

  it('answers a NUL character (%00) in the path or query with 400, before any route runs', async () => {
    for (const url of ['/api/activities?name=a%00b', '/no/such%00route', '/auth/login%00']) {
      const res = await t.http().get(url).expect(400);
      expectErrorShape(res.body, 400, 'Bad Request');
      expect(res.body.message).toBe('The URL must not contain NUL characters (%00)');
    }
    // A login with a NUL in the username: 400 on both databases (PostgreSQL once gave 500).
    const login = await t
      .http()
      .post('/auth/login')
      .send({ username: 'a\u0000b', password: 'some password' })
      .expect(400);
    expect(login.body.message).toContain('username must not contain NUL characters');
  });

  it('answers a body over BODY_LIMIT_BYTES with 413', async () => {
    const res = await t
      .http()
      .post('/probe/echo')
      .send({ count: 1, items: [{ name: 'x'.repeat(4096) }] })
      .expect(413);
    expectErrorShape(res.body, 413, 'Payload Too Large');
    expect(res.body.message).toBe('Request body is larger than the allowed limit');
  });

  it('answers router errors (over-long parameter 414, bad URL encoding 400) in the JSON shape', async () => {
    const res = await t
      .http()
      .get(`/api/session/data/${'k'.repeat(600)}`)
      .expect(414);
    expectErrorShape(res.body, 414, 'URI Too Long');
    expect(res.headers['x-request-id']).toBe(res.body.request_id);
    const bad = await t.http().get('/api/session/data/%E0%A4%A').expect(400);
    expectErrorShape(bad.body, 400, 'Bad Request');
    expect(bad.body.message).toBe("'/api/session/data/%E0%A4%A' is not a valid url component");
  });

  it('answers invalid fields with 400 and per-field details', async () => {
    const res = await t
      .http()
      .post('/probe/echo')
      .send({ count: 11, items: [{ name: '' }], extra: true })
      .expect(400);
    expectErrorShape(res.body, 400, 'Bad Request');
    const fields = (res.body.details as { field: string }[]).map((d) => d.field).sort();
    expect(fields).toEqual(['count', 'extra', 'items.0.name']);
    expect(res.body.message).toMatch(/^Validation failed: /);
  });

  it('accepts a valid body', async () => {
    const res = await t
      .http()
      .post('/probe/echo')
      .send({ count: 2, items: [{ name: 'a' }] })
      .expect(201);
    expect(res.body).toEqual({ count: 2, items: 1 });
  });

  it('answers 401 and 403 in the same shape, keeping an error code', async () => {
    const unauthorized = await t.http().get('/probe/unauthorized').expect(401);
    expectErrorShape(unauthorized.body, 401, 'Unauthorized');
    expect(unauthorized.body.message).toBe('Authentication required');
    const forbidden = await t.http().get('/probe/forbidden').expect(403);
    expectErrorShape(forbidden.body, 403, 'reauth_required');
  });

  it('answers an unexpected error with a generic 500 that leaks nothing', async () => {
    const res = await t.http().get('/probe/crash').expect(500);
    expectErrorShape(res.body, 500, 'Internal Server Error');
    expect(JSON.stringify(res.body)).not.toMatch(/SELECT|secret_column|token|stack|at /);
  });

  it('echoes a sane X-Request-Id and uses it in the error body', async () => {
    const res = await t.http().get('/nope').set('x-request-id', 'client-42.a_b').expect(404);
    expect(res.headers['x-request-id']).toBe('client-42.a_b');
    expect(res.body.request_id).toBe('client-42.a_b');
  });

  it('replaces an unsafe or overlong X-Request-Id with a generated one', async () => {
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', '']) {
      const res = await t.http().get('/health').set('x-request-id', bad).expect(200);
      expect(res.headers['x-request-id']).toMatch(UUID);
    }
  });

  it('generates a request id when none is sent, different per request', async () => {
    const a = await t.http().get('/health');
    const b = await t.http().get('/health');
    expect(a.headers['x-request-id']).toMatch(UUID);
    expect(b.headers['x-request-id']).toMatch(UUID);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });

  it('sets security headers', async () => {
    const res = await t.http().get('/');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
  });
});

/** The Redis the shared rate-limit test uses (running on every machine here, CI included). */
const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('rate limiting shared through Redis (RATE_LIMIT_REDIS_URL)', () => {
  const REDIS = { RATE_LIMIT_MAX: '3', RATE_LIMIT_TTL_S: '60', TRUST_PROXY: 'true' };
  // A client address of this run's own: the counters outlive the test in Redis.
  const client = () => `198.18.${randomInt(256)}.${randomInt(256)}`;
  const hit = (t: TestApp, ip: string) =>
    t.http().get('/probe/unauthorized').set('x-forwarded-for', ip);

  it('counts a client across instances: the limit holds for all of them together', async () => {
    const env = { ...REDIS, RATE_LIMIT_REDIS_URL: TEST_REDIS_URL };
    const [a, b] = [await startTestApp(env, [ProbeModule]), await startTestApp(env, [ProbeModule])];
    try {
      const ip = client();
      const statuses = [];
      for (const app of [a, b, a, b]) statuses.push((await hit(app, ip)).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
      const refused = await hit(a, ip).expect(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
      await hit(b, client()).expect(401); // another client has its own count
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('lets requests through, and says so in the log, while Redis cannot be reached', async () => {
    const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const t = await startTestApp({ ...REDIS, RATE_LIMIT_REDIS_URL: 'redis://127.0.0.1:1' }, [
      ProbeModule,
    ]);
    try {
      const ip = client();
      for (let i = 0; i < 5; i++) await hit(t, ip).expect(401);
      expect(warnings.mock.calls.map(([message]) => String(message))).toContainEqual(
        expect.stringMatching(/^Rate limit store unavailable, requests let through: /),
      );
    } finally {
      warnings.mockRestore();
      await t.close();
    }
  });
});

describe('rate limiting', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_TTL_S: '60' }, [ProbeModule]);
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 429 with Retry-After once an IP exceeds RATE_LIMIT_MAX on a route', async () => {
    for (let i = 0; i < 3; i++) await t.http().get('/probe/unauthorized').expect(401);
    const res = await t.http().get('/probe/unauthorized').expect(429);
    expectErrorShape(res.body, 429, 'Too Many Requests');
    expect(res.body.message).toBe(
      'Too many requests from this address to this route: at most 3 per 60 s; retry after Retry-After',
    );
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    // Each route counts on its own.
    await t.http().get('/').expect(200);
  });

  it('does not rate-limit health checks', async () => {
    for (let i = 0; i < 5; i++) await t.http().get('/health').expect(200);
  });

  it('documents the 429 on every rate-limited operation, not on health checks', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body;
    const limit =
      'More than 3 requests from this address in 60 s (RATE_LIMIT_MAX); see Retry-After';
    const operations = Object.entries(
      doc.paths as Record<
        string,
        Record<string, { responses: Record<string, { description: string }> }>
      >,
    ).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => [
        `${method.toUpperCase()} ${path}`,
        op.responses['429']?.description,
      ]),
    );
    const unlimited = operations.filter(([, description]) => !description?.includes(limit));
    expect(unlimited.map(([operation]) => operation).sort()).toEqual([
      'GET /',
      'GET /health',
      'GET /health/ready',
    ]);
    // The login throttle's own 429 stays beside it.
    const login = operations.find(([operation]) => operation === 'POST /auth/login')!;
    expect(login[1]).toBe(`Too many failed logins for this username and IP; or ${limit}`);
  });
});

describe('readiness', () => {
  it('answers 503 in the error shape when the database is gone', async () => {
    const t = await startTestApp();
    try {
      await t.dataSource.destroy();
      const res = await t.http().get('/health/ready').expect(503);
      expectErrorShape(res.body, 503, 'Service Unavailable');
      expect(res.body.details).toEqual([{ check: 'database', status: 'down' }]);
    } finally {
      await t.close();
    }
  });
});

describe('deeply nested bodies', () => {
  it('answers 400 in the error shape instead of 500, and stores nothing', async () => {
    const t = await startTestApp();
    try {
      const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
      for (const [path, body] of [
        ['/auth/login', `{"username":${deep(20_000)},"password":"x"}`],
        ['/api/track/page', `{"page":"/x","properties":{"a":${deep(20_000)}}}`],
      ]) {
        const res = await t
          .http()
          .post(path)
          .set('content-type', 'application/json')
          .send(body)
          .expect(400);
        expectErrorShape(res.body, 400, 'Bad Request');
        expect(res.body.message).toBe('The request is nested too deeply');
      }
      const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM events');
      expect(Number(n)).toBe(0);
      await t.http().get('/health').expect(200);
    } finally {
      await t.close();
    }
  });
});

describe('errors before a request is parsed', () => {
  /** Sends `raw` bytes to a fresh app over a socket; the answer's head and parsed body. */
  async function exchange(raw: string): Promise<{ head: string; body: Record<string, unknown> }> {
    const t = await startTestApp();
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      const response = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(raw));
        let received = '';
        socket.on('data', (chunk) => (received += chunk.toString()));
        socket.on('close', () => resolve(received));
        socket.on('error', reject);
      });
      const [head, body] = response.split('\r\n\r\n');
      return { head, body: JSON.parse(body) as Record<string, unknown> };
    } finally {
      await t.close();
    }
  }

  it.each([
    [
      'headers over the size limit',
      `GET /health?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      431,
      'The request headers (the URL included) are too large',
    ],
    ['malformed HTTP', 'NOT HTTP AT ALL\r\n\r\n', 400, 'Malformed HTTP request'],
  ])('answers %s in the error shape', async (_label, raw, status, message) => {
    const { head, body } = await exchange(raw);
    expect(head.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status]}`);
    expect(head).toContain('Content-Type: application/json');
    expectErrorShape(body, status, STATUS_CODES[status]!);
    expect(body.message).toBe(message);
    expect(head).toContain(`X-Request-Id: ${String(body.request_id)}`);
  });

  it('answers an Expect header it does not understand with 417 in the error shape', async () => {
    const { head, body } = await exchange(
      'POST /auth/login HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n' +
        'Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 417 Expectation Failed');
    expectErrorShape(body, 417, 'Expectation Failed');
    expect(body.message).toBe('Unsupported Expect header: only "100-continue" is understood');
    expect(head.toLowerCase()).toContain(`x-request-id: ${String(body.request_id)}`);
    expect(head.toLowerCase()).toContain('x-content-type-options: nosniff');
    expect(head.toLowerCase()).toContain('content-type: application/json');
  });
});

describe('error responses with the default body limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({}, [ProbeModule]);
  });
  afterAll(async () => {
    await t.close();
  });

  it('checks a body of 130,000 array items for huge numbers without overflowing the stack', async () => {
    // "1e999" in a string makes the parser look for non-finite numbers through every value.
    const zeros = Array<string>(130_000).fill('0').join(',');
    const body = `{"count": 1, "items": [{"name": "1e999"}], "extra": [${zeros}]}`;
    const res = await t
      .http()
      .post('/probe/echo')
      .set('content-type', 'application/json')
      .send(body)
      .expect(400);
    expectErrorShape(res.body, 400, 'Bad Request');
    expect(res.body.message).toBe('Validation failed: property extra should not exist');
  });
});
