import { Writable } from 'node:stream';
import pino from 'pino';
import { lazyRequestLogger, levelOf } from './logger';

/** A pino logger at `level` writing JSON lines into `lines`, counting the children it builds. */
function capturing(level: string) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const parent = pino({ level }, stream);
  const built = { children: 0 };
  const child = parent.child;
  parent.child = function (this: typeof parent, ...args: Parameters<typeof child>) {
    built.children += 1;
    return child.apply(this, args);
  } as typeof parent.child;
  return { parent, lines, built };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('lazyRequestLogger', () => {
  it('builds no child while nothing is logged at an enabled level', async () => {
    const { parent, lines, built } = capturing('warn');
    const log = lazyRequestLogger(parent, { request_id: 'r-1' }, {});
    log.info({ path: '/x' }, 'request completed');
    log.debug('details');
    log.trace('more details');
    await flush();
    expect(built.children).toBe(0);
    expect(lines).toEqual([]);
    expect(log.level).toBe('warn');
  });

  it('logs through one child bound to the request id once a level is enabled', async () => {
    const { parent, lines, built } = capturing('warn');
    const log = lazyRequestLogger(parent, { request_id: 'r-2' }, {});
    log.warn({ status: 404 }, 'request completed');
    log.error(new Error('boom'), 'failed');
    await flush();
    expect(built.children).toBe(1);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ request_id: 'r-2', status: 404, msg: 'request completed' });
    expect(lines[1]).toMatchObject({ request_id: 'r-2', msg: 'failed', level: 50 });
    expect((lines[1].err as { message: string }).message).toBe('boom');
  });

  it('honours a level given for the child, and a level set on it later', async () => {
    const { parent, lines } = capturing('warn');
    const log = lazyRequestLogger(parent, { request_id: 'r-3' }, { level: 'debug' });
    expect(log.level).toBe('debug');
    log.debug('route-level debug');
    const quiet = lazyRequestLogger(parent, { request_id: 'r-4' }, {});
    quiet.level = 'info';
    quiet.info('now enabled');
    await flush();
    expect(lines.map((line) => [line.request_id, line.msg])).toEqual([
      ['r-3', 'route-level debug'],
      ['r-4', 'now enabled'],
    ]);
  });

  it('hands out real children of the request logger', async () => {
    const { parent, lines } = capturing('info');
    const log = lazyRequestLogger(parent, { request_id: 'r-5' }, {});
    log.child({ part: 'upload' }).info('nested');
    await flush();
    expect(lines[0]).toMatchObject({ request_id: 'r-5', part: 'upload', msg: 'nested' });
  });
});

describe('levelOf (request lines)', () => {
  it("logs faults at error, refusals and the service's own 503s at warn", () => {
    expect([200, 304, 400, 404, 429, 500, 502, 503, 504].map(levelOf)).toEqual([
      'info',
      'info',
      'warn',
      'warn',
      'warn',
      'error',
      'error',
      'warn',
      'error',
    ]);
  });
});
