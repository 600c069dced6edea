import { Env, parseEnv } from './env.js';

/**
 * Typed configuration, grouped by area. Injected by class token:
 * `constructor(private readonly config: AppConfig)`.
 * Built once per application from the validated environment.
 */
export class AppConfig {
  readonly http: {
    readonly port: number;
    readonly host: string;
    readonly bodyLimitBytes: number;
    readonly trustProxy: boolean;
    readonly corsOrigins: readonly string[];
    readonly shutdownTimeoutMs: number;
  };
  readonly rateLimit: {
    readonly ttlS: number;
    /** Requests per IP per window; 0 turns the general rate limit off. */
    readonly max: number;
  };
  readonly log: { readonly level: string };
  readonly database: {
    readonly type: 'sqlite' | 'postgres';
    readonly path: string;
    readonly url: string | undefined;
    readonly poolMax: number;
    readonly migrationsRun: boolean;
  };

  readonly nodeEnv: 'development' | 'production' | 'test';

  constructor(env: Env) {
    this.nodeEnv = env.NODE_ENV;
    this.http = {
      port: env.PORT,
      host: env.HOST,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      trustProxy: env.TRUST_PROXY,
      corsOrigins: env.CORS_ORIGINS,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    };
    this.rateLimit = { ttlS: env.RATE_LIMIT_TTL_S, max: env.RATE_LIMIT_MAX };
    this.log = { level: env.LOG_LEVEL };
    this.database = {
      type: env.DB_TYPE,
      path: env.DATABASE_PATH,
      url: env.DATABASE_URL,
      poolMax: env.DB_POOL_MAX,
      migrationsRun: env.MIGRATIONS_RUN,
    };
  }

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }
}

/** Validates `raw` (normally process.env) and returns the typed configuration. */
export function loadConfig(raw: NodeJS.ProcessEnv = process.env): AppConfig {
  return new AppConfig(parseEnv(raw));
}
