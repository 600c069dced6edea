import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import { RedisThrottlerStorage } from './redis-throttler-storage';

/** The Redis running on every machine here, CI included. */
const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('RedisThrottlerStorage', () => {
  let warnings: jest.SpyInstance;
  beforeEach(() => {
    warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => warnings.mockRestore());

  it('counts the very first hit after start-up (it waits for the connection)', async () => {
    const storage = new RedisThrottlerStorage(TEST_REDIS_URL, `sas:test:${randomUUID()}:`);
    try {
      await storage.onModuleInit();
      const first = await storage.increment('client', 60_000, 2, 0, 'default');
      expect(first).toEqual({
        totalHits: 1,
        timeToExpire: 60,
        isBlocked: false,
        timeToBlockExpire: 0,
      });
      expect((await storage.increment('client', 60_000, 2, 0, 'default')).totalHits).toBe(2);
      const third = await storage.increment('client', 60_000, 2, 0, 'default');
      expect(third).toMatchObject({ totalHits: 3, isBlocked: true, timeToBlockExpire: 60 });
      expect(warnings).not.toHaveBeenCalled();
    } finally {
      await storage.onApplicationShutdown();
    }
  });

  it('fails over at once, not request after request, once a ready Redis stops answering', async () => {
    // A proxy to the real Redis that can black-hole the traffic (a network partition).
    const redis = new URL(TEST_REDIS_URL);
    let partitioned = false;
    const sockets: Socket[] = [];
    const proxy = createServer((client) => {
      const upstream = connect(Number(redis.port || 6379), redis.hostname);
      sockets.push(client, upstream);
      client.on('data', (data) => partitioned || upstream.write(data));
      upstream.on('data', (data) => partitioned || client.write(data));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.address() as AddressInfo;
    const storage = new RedisThrottlerStorage(
      `redis://127.0.0.1:${port}`,
      `sas:test:${randomUUID()}:`,
    );
    try {
      await storage.onModuleInit();
      expect((await storage.increment('client', 60_000, 9, 0, 'default')).totalHits).toBe(1);
      partitioned = true;
      const started = Date.now();
      for (let i = 0; i < 6; i++) {
        expect((await storage.increment('client', 60_000, 9, 0, 'default')).totalHits).toBe(0);
      }
      // The first request waits out the command timeout (500 ms); the socket timeout then
      // drops the silent connection, and the rest fail over without waiting (not 6 × 500 ms).
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      await storage.onApplicationShutdown();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  describe('against a server that accepts connections and never answers', () => {
    let server: Server;
    const sockets: Socket[] = [];
    let url = '';
    beforeAll(async () => {
      server = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      url = `redis://127.0.0.1:${address.port}`;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    it('starts anyway, lets requests through at once and says so in the log', async () => {
      const storage = new RedisThrottlerStorage(url);
      try {
        await storage.onModuleInit(); // bounded: gives up after its connect timeout
        const started = Date.now();
        for (let i = 0; i < 5; i++) {
          expect(await storage.increment('client', 60_000, 1, 0, 'default')).toEqual({
            totalHits: 0,
            timeToExpire: 0,
            isBlocked: false,
            timeToBlockExpire: 0,
          });
        }
        // Not 5 × the command timeout: no request waits on the silent connection.
        expect(Date.now() - started).toBeLessThan(1_000);
        expect(warnings.mock.calls.map(([message]) => String(message))).toContainEqual(
          expect.stringMatching(/^Rate limit store unavailable, requests let through: /),
        );
      } finally {
        await storage.onApplicationShutdown();
      }
    });
  });
});
