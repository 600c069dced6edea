import { Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import Redis from 'ioredis';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** The client with INCREMENT defined on it as a command (see the constructor). */
type RateLimitRedis = Redis & {
  rateLimitIncrement(
    hitsKey: string,
    blockKey: string,
    windowMs: number,
    limit: number,
    blockMs: number,
  ): Promise<[hits: number, windowLeftMs: number, blocked: 0 | 1, blockLeftMs: number]>;
};

/**
 * One hit, atomically: count it in the key's window (the first hit starts
 * the window), and past `limit` block the key for `block` ms. Returns hits,
 * the window's remaining ms, blocked (0/1) and the block's remaining ms.
 */
const INCREMENT = `
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then
  return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1]), 1, blocked}
end
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local window = redis.call('PTTL', KEYS[1])
if hits > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return {hits, window, 1, tonumber(ARGV[3])}
end
return {hits, window, 0, 0}
`;

/** How long a failing Redis is not mentioned again in the log. */
const WARN_EVERY_MS = 60_000;

/** How long start-up waits for the first connection, and a request for its reply. */
const CONNECT_TIMEOUT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 500;

/**
 * The general rate limit's counters in Redis (RATE_LIMIT_REDIS_URL), shared
 * by every instance of the service: in memory, each instance counted alone,
 * so N instances let a client through N times the limit. A fixed window of
 * RATE_LIMIT_TTL_S per client and route, one round trip per request (a Lua
 * script: count and block at once).
 *
 * Written here rather than taken from @nest-lab/throttler-storage-redis:
 * that package declares NestJS up to 11, and npm refuses it beside NestJS 12.
 *
 * If Redis fails or is unreachable, requests are let through (and the
 * failure logged at most once a minute): the rate limit guards against
 * abuse, and its store being down must not take the whole service down.
 * Start-up waits (up to CONNECT_TIMEOUT_MS) for the first connection, so
 * the first requests are counted like the rest rather than let through
 * while it is still being made. A Redis that stops answering without
 * closing the connection costs one request COMMAND_TIMEOUT_MS at most:
 * the socket timeout then drops the connection, and until it is back
 * requests fail over at once (no offline queue).
 */
export class RedisThrottlerStorage
  implements ThrottlerStorage, OnModuleInit, OnApplicationShutdown
{
  private readonly logger = new Logger('RateLimit');
  private readonly redis: RateLimitRedis;
  private lastWarning = 0;

  constructor(
    url: string,
    private readonly prefix = 'sas:rate:',
  ) {
    this.redis = new Redis(url, {
      // Fail fast instead of queueing requests behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      socketTimeout: COMMAND_TIMEOUT_MS,
      lazyConnect: false,
    }) as RateLimitRedis;
    this.redis.on('error', (error: Error) => this.warn(error));
    // EVALSHA, falling back to EVAL once per connection: the script is not resent every request.
    this.redis.defineCommand('rateLimitIncrement', { numberOfKeys: 2, lua: INCREMENT });
  }

  async onModuleInit(): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.warn(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`));
        done();
      }, CONNECT_TIMEOUT_MS);
      this.redis.on('ready', done);
    });
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const base = `${this.prefix}${throttlerName}:${key}`;
    try {
      const [hits, window, blocked, blockLeft] = await this.redis.rateLimitIncrement(
        `${base}:hits`,
        `${base}:block`,
        Math.max(1, Math.round(ttl)),
        limit,
        Math.max(1, Math.round(blockDuration > 0 ? blockDuration : ttl)),
      );
      return {
        totalHits: hits,
        timeToExpire: Math.max(0, Math.ceil(window / 1000)),
        isBlocked: blocked === 1,
        timeToBlockExpire: Math.max(0, Math.ceil(blockLeft / 1000)),
      };
    } catch (error) {
      this.warn(error as Error);
      return { totalHits: 0, timeToExpire: 0, isBlocked: false, timeToBlockExpire: 0 };
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }

  private warn(error: Error): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.logger.warn(`Rate limit store unavailable, requests let through: ${error.message}`);
  }
}
