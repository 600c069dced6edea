import { CronTime } from 'cron';
import { isIP } from 'node:net';
import { USERNAME_PATTERN, USERNAME_RULE } from '../validation/username.js';
import { bool, cleanEnv, makeValidator, str } from 'envalid';

/**
 * Every environment variable the service reads, with its default and what is
 * allowed. This is the single source of truth: the README configuration table
 * and `.env.example` mirror it, and `loadConfig` turns it into typed sections.
 *
 * A bad value stops the process with one line naming the variable (see
 * ConfigError); nothing else in the code reads `process.env`.
 */

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** An integer within [min, max]; the message names the allowed range. */
const int = (min: number, max: number) =>
  makeValidator<number>((input: string) => {
    const trimmed = input.trim();
    if (!/^-?\d+$/.test(trimmed)) throw new Error(`must be an integer from ${min} to ${max}`);
    const value = Number(trimmed);
    if (value < min || value > max) throw new Error(`must be an integer from ${min} to ${max}`);
    return value;
  });

/** One of a fixed set of words. */
const oneOf = <T extends string>(...allowed: T[]) =>
  makeValidator<T>((input: string) => {
    if (!(allowed as string[]).includes(input))
      throw new Error(`must be one of ${allowed.join(', ')}`);
    return input as T;
  });

/** Origins for CORS/CSRF: each must be scheme://host[:port] with no path. */
const origins = makeValidator<string[]>((input: string) => {
  const items = input
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  for (const item of items) {
    let parsed: URL;
    try {
      parsed = new URL(item);
    } catch {
      throw new Error(`"${item}" is not an origin like https://app.example.com`);
    }
    if (parsed.origin !== item.replace(/\/$/, '')) {
      throw new Error(`"${item}" is not an origin like https://app.example.com (no path)`);
    }
  }
  return items.map((item) => item.replace(/\/$/, ''));
});

/**
 * Which proxies to believe about the client address (Fastify's trustProxy):
 * `false`; `true` or a number N, the N proxies nearest to the service (the
 * address is the Nth `X-Forwarded-For` entry from the right, the one your
 * own proxy wrote); or the proxies' addresses and CIDR ranges. Never "every
 * hop": the left-most entry is whatever the client sent, and the per-IP
 * limits would count whatever address it chose.
 */
const trustProxy = makeValidator<false | number | string[]>((input: string) => {
  const value = input.trim().toLowerCase();
  if (value === 'false' || value === '0') return false;
  if (value === 'true') return 1;
  if (/^\d+$/.test(value) && Number(value) <= 10) return Number(value);
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  const valid = (item: string) => {
    const [address, bits, ...rest] = item.split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return false;
    if (bits === undefined) return true;
    return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
  };
  if (items.length === 0 || !items.every(valid)) {
    throw new Error(
      'must be false, true (one proxy), a number of proxies from 1 to 10, or comma-separated proxy addresses or CIDR ranges',
    );
  }
  return items;
});

/** A cron pattern (5 or 6 fields) that the scheduler accepts. */
const cron = makeValidator<string>((input: string) => {
  const fields = input.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6) {
    throw new Error('must be a cron pattern with 5 or 6 fields, e.g. "*/10 * * * *"');
  }
  try {
    new CronTime(input.trim());
  } catch (error) {
    throw new Error(`must be a valid cron pattern (${(error as Error).message})`, { cause: error });
  }
  return input.trim();
});

/** Comma-separated BCP 47 language tags such as `en` or `pt-BR`. */
const languages = makeValidator<string[]>((input: string) => {
  const items = input
    .split(',')
    .map((i) => i.trim())
    .filter(Boolean);
  if (items.length === 0 || !items.every((i) => /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(i))) {
    throw new Error('must be comma-separated language tags like "en,de,pt-BR"');
  }
  return items;
});

/**
 * The consent types: comma-separated lower-case words (`a-z`, `0-9`, `_`),
 * each once, `analytics` among them (the consent that tracking follows).
 */
const consentTypes = makeValidator<string[]>((input: string) => {
  const items = input
    .split(',')
    .map((i) => i.trim())
    .filter(Boolean);
  if (items.length === 0 || !items.every((i) => /^[a-z][a-z0-9_]{0,63}$/.test(i))) {
    throw new Error('must be comma-separated lower-case words like "analytics,marketing"');
  }
  if (new Set(items).size !== items.length) throw new Error('must not name a type twice');
  if (!items.includes('analytics')) {
    throw new Error('must include "analytics": it is the consent that tracking follows');
  }
  return items;
});

/** A file path: not blank (better-sqlite3 would open a temporary database for ""). */
const filePath = makeValidator<string>((input: string) => {
  if (input.trim() === '') throw new Error('must be a file path (or :memory:)');
  return input;
});

/** A username that registration would accept, so that the account can log in. */
const username = makeValidator<string>((input: string) => {
  if (!USERNAME_PATTERN.test(input)) throw new Error(USERNAME_RULE);
  return input;
});

/**
 * `name=action|action;name2=action` → { name: [actions] } for feature-usage
 * analytics. No prototype: a name like `__proto__` or `constructor` is a
 * feature like any other, and looking up an unconfigured name finds nothing.
 */
const features = makeValidator<Record<string, string[]>>((input: string) => {
  const result = Object.create(null) as Record<string, string[]>;
  const word = /^[A-Za-z0-9._:/-]{1,128}$/;
  for (const entry of input
    .split(';')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [name, actions] = entry.split('=');
    const list = (actions ?? '')
      .split('|')
      .map((a) => a.trim())
      .filter(Boolean);
    if (!name || !word.test(name.trim()) || list.length === 0 || !list.every((a) => word.test(a))) {
      throw new Error('must look like "export=export.csv|export.pdf;share=share.link"');
    }
    result[name.trim()] = list;
  }
  return result;
});

/** A URL of one of `protocols` (e.g. `redis:`); `example` shows the expected form. */
const urlOf = (protocols: string[], example: string) =>
  makeValidator<string>((input: string) => {
    let protocol: string | undefined;
    try {
      protocol = new URL(input).protocol;
    } catch {
      // reported below
    }
    if (!protocol || !protocols.includes(protocol))
      throw new Error(`must be a URL like ${example}`);
    return input;
  });

const redisUrl = urlOf(['redis:', 'rediss:'], 'redis://host:6379 (or rediss:// for TLS)');
const postgresUrl = urlOf(['postgres:', 'postgresql:'], 'postgres://user:pass@host:5432/dbname');

/** Environment specification. Keep README.md and .env.example in step. */
export const envSpec = {
  NODE_ENV: oneOf('development', 'production', 'test')({ default: 'development' }),
  PORT: int(1, 65535)({ default: 3000 }),
  HOST: str({ default: '0.0.0.0' }),
  LOG_LEVEL: oneOf(
    'fatal',
    'error',
    'warn',
    'info',
    'debug',
    'trace',
    'silent',
  )({
    default: 'info',
  }),
  BODY_LIMIT_BYTES: int(1024, 104_857_600)({ default: 262_144 }),
  BODY_INFLIGHT_MAX_BYTES: int(1024, 1_073_741_824)({ default: 16_777_216 }),
  BODY_RECEIVE_TIMEOUT_S: int(1, 3_600)({ default: 30 }),
  TRUST_PROXY: trustProxy({ default: false }),
  CORS_ORIGINS: origins({ default: [] }),
  RATE_LIMIT_TTL_S: int(1, 86_400)({ default: 60 }),
  RATE_LIMIT_MAX: int(0, 1_000_000)({ default: 1000 }),
  RATE_LIMIT_REDIS_URL: redisUrl({ default: undefined }),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000)({ default: 10_000 }),

  DB_TYPE: oneOf('sqlite', 'postgres')({ default: 'sqlite' }),
  DATABASE_PATH: filePath({ default: './data/app.db' }),
  DATABASE_URL: postgresUrl({
    default: undefined,
    requiredWhen: (env) => env.DB_TYPE === 'postgres',
  }),
  DB_POOL_MAX: int(1, 1000)({ default: 10 }),
  ANALYTICS_QUERY_TIMEOUT_S: int(1, 3_600)({ default: 30 }),
  MIGRATIONS_RUN: bool({ default: true }),

  REGISTRATION_OPEN: bool({ default: true }),
  ADMIN_USERNAME: username({ default: undefined }),
  ADMIN_PASSWORD: str({ default: undefined }),
  PASSWORD_HASH_COST: int(10, 20)({ default: 17 }),

  SESSION_IDLE_TIMEOUT_S: int(1, 31_536_000)({ default: 1800 }),
  SESSION_ABSOLUTE_TIMEOUT_S: int(1, 31_536_000)({ default: 43_200 }),
  SESSION_REMEMBER_IDLE_S: int(1, 31_536_000)({ default: 604_800 }),
  SESSION_REMEMBER_ABSOLUTE_S: int(1, 31_536_000)({ default: 2_592_000 }),
  SESSION_TOUCH_INTERVAL_S: int(0, 86_400)({ default: 60 }),
  SESSION_MAX_PER_USER: int(1, 1000)({ default: 10 }),
  SESSION_DATA_VALUE_MAX_BYTES: int(16, 1_048_576)({ default: 16_384 }),
  SESSION_DATA_MAX_BYTES: int(16, 16_777_216)({ default: 65_536 }),
  SESSION_CLEANUP_CRON: cron({ default: '*/10 * * * *' }),
  ANONYMOUS_SESSIONS: bool({ default: true }),
  FRESH_AUTH_MAX_AGE_S: int(1, 86_400)({ default: 600 }),
  COOKIE_SECURE: bool({ default: undefined }),
  LOGIN_MAX_ATTEMPTS: int(1, 1000)({ default: 5 }),
  LOGIN_WINDOW_S: int(1, 86_400)({ default: 900 }),

  TRACKING_ENABLED: bool({ default: true }),
  TRACKING_FLUSH_MS: int(1, 10_000)({ default: 25 }),
  TRACKING_AUTO_FLUSH_MS: int(1, 10_000)({ default: 250 }),
  TRACKING_BATCH_MAX: int(1, 10_000)({ default: 1000 }),
  TRACKING_QUEUE_MAX: int(1, 10_000_000)({ default: 100_000 }),
  TRACKING_QUEUE_MAX_BYTES: int(65_536, 1_073_741_824)({ default: 33_554_432 }),
  TRACKING_STREAM_HEARTBEAT_S: int(1, 3600)({ default: 15 }),
  IP_ANONYMIZATION: bool({ default: true }),

  FEATURES: features({ default: Object.create(null) as Record<string, string[]> }),

  SUPPORTED_LANGUAGES: languages({
    default: ['en', 'de', 'fr', 'es', 'it', 'pt', 'nl', 'pl', 'ja', 'zh'],
  }),
  CONSENT_TYPES: consentTypes({ default: ['analytics', 'marketing', 'personalization'] }),
  TRACKING_CONSENT_MODE: oneOf('opt-out', 'opt-in')({ default: 'opt-out' }),
  RETENTION_EVENTS_DAYS: int(0, 36_500)({ default: 90 }),
  RETENTION_SESSION_EVENTS_DAYS: int(0, 36_500)({ default: 180 }),
  RETENTION_AUDIT_DAYS: int(0, 36_500)({ default: 730 }),
  RETENTION_IP_DAYS: int(0, 36_500)({ default: 30 }),
  RETENTION_CRON: cron({ default: '0 3 * * *' }),
  RETENTION_BATCH: int(1, 1_000_000)({ default: 10_000 }),
};

export type Env = ReturnType<typeof parseEnv>;

/** Validates the raw environment; throws ConfigError naming the first bad variable. */
export function parseEnv(raw: NodeJS.ProcessEnv) {
  // A PostgreSQL URL with DB_TYPE left at its default would quietly run each instance on its
  // own SQLite file: separate sessions, revocations and analytics per node. Refused; an
  // explicit DB_TYPE=sqlite says DATABASE_URL is meant for something else.
  if (raw.DATABASE_URL && raw.DB_TYPE === undefined) {
    throw new ConfigError(
      'Invalid configuration: DATABASE_URL is set but DB_TYPE is not: set DB_TYPE=postgres to use it (or DB_TYPE=sqlite to ignore it)',
    );
  }
  return cleanEnv(raw, envSpec, {
    reporter: ({ errors }) => {
      const names = Object.keys(errors) as (keyof typeof envSpec)[];
      if (names.length === 0) return;
      const lines = names.map((name) => {
        const error = errors[name];
        const given = raw[name];
        const reason =
          error?.name === 'EnvMissingError'
            ? 'is required' + (name === 'DATABASE_URL' ? ' when DB_TYPE=postgres' : '')
            : (error?.message ?? 'is invalid');
        return `${name} ${reason}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`;
      });
      throw new ConfigError(`Invalid configuration: ${lines.join('; ')}`);
    },
  });
}
