/**
 * Fills the configured database (DB_TYPE, DATABASE_PATH / DATABASE_URL) with
 * realistic synthetic activity: users, sessions and journeys (landing ->
 * pricing -> signup -> checkout with drop-off, returning users, feature
 * actions, automatic api_request events).
 *
 *   npm run seed:demo -- --users 10000 --events 1000000 --days 90 [--seed 42]
 *
 * Rows are written in batched transactions (multi-row INSERTs). Every demo
 * user's password is "demo-password" (a fixed hash, so seeding stays fast).
 */
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppConfig, loadConfig } from '../common/config/config.js';
import { PasswordHasher } from '../modules/users/password-hasher.js';
import { buildDataSourceOptions } from '../common/database/data-source-options.js';
import { rebuildAllSummaries } from '../modules/tracking/session-summaries.js';

interface Options {
  users: number;
  events: number;
  days: number;
  seed: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { users: 1000, events: 100_000, days: 30, seed: 42 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '') as keyof Options | undefined;
    const value = Number(argv[i + 1]);
    if (!key || !(key in options) || !Number.isInteger(value) || value < 1) {
      throw new Error(
        `Usage: seed:demo -- --users N --events M --days D [--seed S] (bad "${argv[i]} ${argv[i + 1]}")`,
      );
    }
    options[key] = value;
  }
  return options;
}

/** Small deterministic PRNG (mulberry32), so a seed reproduces a dataset. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Row = [string, string, string | null, string, string, string | null, string | null, number];

const EVENT_COLUMNS =
  'event_id, dedupe_key, user_id, session_id, type, name, path, occurred_at, received_at, properties, ip, user_agent';
const LANDINGS = ['/', '/home', '/blog/launch', '/blog/pricing-explained', '/docs/getting-started'];
const FILLERS = [
  '/docs/api',
  '/docs/sessions',
  '/docs/analytics',
  '/blog/gdpr',
  '/features',
  '/about',
  '/changelog',
];
const FEATURES = ['export.csv', 'export.pdf', 'share.link', 'search.query', 'dashboard.filter'];
const API_ROUTES = [
  'GET /api/session',
  'GET /api/preferences',
  'POST /api/track/page',
  'GET /api/sessions',
];

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const config = loadConfig(process.env);
  const dataSource = new DataSource(buildDataSourceOptions(config.database));
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  const postgres = dataSource.options.type === 'postgres';
  const started = Date.now();
  const random = prng(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];

  // Users (one cheap hash shared by all: seeding must stay fast)
  const hasher = new PasswordHasher({ users: { passwordHashCost: 10 } } as AppConfig);
  const passwordHash = await hasher.hash('demo-password');
  const userIds = Array.from({ length: options.users }, () => randomUUID());
  const now = Date.now();
  const userRows = userIds.map((id, i) => [
    id,
    `demo${i}`,
    `demo${i}`,
    null,
    passwordHash,
    'user',
    false,
    now - options.days * 86_400_000,
    now,
  ]);
  await insertRows(
    dataSource,
    postgres,
    'users',
    'id, username, username_lower, email, password_hash, role, disabled, created_at, updated_at',
    userRows,
    500,
    true,
  );

  // Sessions and their events, streamed in chunks
  const sessionCount = Math.max(1, Math.round(options.events / 10));
  let written = 0;
  await withoutEventIndexes(dataSource, postgres, async () => {
    const perSession = options.events / sessionCount;
    let buffer: unknown[][] = [];
    const flush = async () => {
      if (buffer.length === 0) return;
      await insertRows(dataSource, postgres, 'events', EVENT_COLUMNS, buffer, 500, false);
      written += buffer.length;
      buffer = [];
    };
    for (let s = 0; s < sessionCount && written + buffer.length < options.events; s++) {
      const sessionId = randomUUID();
      // Returning users: squaring skews towards a core of frequent users; 10% stay anonymous.
      const userId =
        random() < 0.1 ? null : userIds[Math.floor(random() * random() * userIds.length)];
      // Sessions start in time order, as real traffic arrives (row order then follows time,
      // which is what the time-range indexes of the analytics queries see in production).
      let at =
        now -
        options.days * 86_400_000 +
        Math.floor(((s + random()) / sessionCount) * options.days * 86_400_000);
      const budget = Math.max(1, Math.round(perSession * (0.5 + random())));
      const rows: Row[] = [];
      const add = (type: string, name: string | null, path: string | null) => {
        const id = randomUUID();
        rows.push([id, `x:${id}`, userId, sessionId, type, name, path, at]);
        at += 5_000 + Math.floor(random() * 115_000);
      };
      add('page_view', null, pick(LANDINGS));
      if (random() < 0.6) {
        add('page_view', null, '/pricing');
        if (random() < 0.4) {
          add('page_view', null, '/signup');
          add('action', 'signup.submit', null);
          if (random() < 0.5) {
            add('page_view', null, '/checkout');
            add('action', 'checkout.complete', null);
          }
        }
      }
      while (rows.length < budget) {
        const r = random();
        if (r < 0.3) add('api_request', pick(API_ROUTES), null);
        else if (r < 0.45) add('action', pick(FEATURES), null);
        else add('page_view', null, pick(FILLERS));
      }
      for (const row of rows) {
        if (written + buffer.length >= options.events) break;
        buffer.push([...row, row[7], null, null, null]);
      }
      if (buffer.length >= 10_000) await flush();
    }
    await flush();
  });
  // Written around the event writer, so the per-session rollup is computed here.
  await dataSource.transaction((manager) =>
    rebuildAllSummaries((sql) => manager.query(sql), dataSource.options.type === 'postgres'),
  );
  if (!postgres) await dataSource.query('ANALYZE');
  else await dataSource.query('ANALYZE events');
  await dataSource.destroy();
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(
    `Seeded ${options.users} users, ${sessionCount} sessions, ${written} events over ${options.days} days in ${seconds.toFixed(1)} s\n`,
  );
}

/**
 * Runs `load` with the secondary indexes of `events` dropped, then builds
 * them again: one sort per index instead of a million inserts at random
 * places of six b-trees (about twice as fast for 1M events here).
 */
async function withoutEventIndexes(
  dataSource: DataSource,
  postgres: boolean,
  load: () => Promise<void>,
): Promise<void> {
  const indexes = await dataSource.query<{ name: string; definition: string }[]>(
    postgres
      ? `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
         WHERE tablename = 'events' AND indexname NOT IN (
           SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass)`
      : `SELECT name, sql AS definition FROM sqlite_master
         WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL`,
  );
  for (const index of indexes) await dataSource.query(`DROP INDEX "${index.name}"`);
  try {
    await load();
  } finally {
    for (const index of indexes) await dataSource.query(index.definition);
  }
}

/** Multi-row INSERTs of `perStatement` rows, one transaction per call. */
async function insertRows(
  dataSource: DataSource,
  postgres: boolean,
  table: string,
  columns: string,
  rows: unknown[][],
  perStatement: number,
  ignoreConflicts: boolean,
): Promise<void> {
  const width = columns.split(',').length;
  await dataSource.transaction(async (manager) => {
    for (let start = 0; start < rows.length; start += perStatement) {
      const chunk = rows.slice(start, start + perStatement);
      let n = 0;
      const values = chunk
        .map(
          () => `(${Array.from({ length: width }, () => (postgres ? `$${++n}` : '?')).join(', ')})`,
        )
        .join(', ');
      await manager.query(
        `INSERT INTO ${table} (${columns}) VALUES ${values}${ignoreConflicts ? ' ON CONFLICT DO NOTHING' : ''}`,
        chunk.flat(),
      );
    }
  });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `seed:demo failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
