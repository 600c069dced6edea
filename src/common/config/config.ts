import { ConfigError, Env, parseEnv } from './env.js';

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
    /** Request bodies being received at once, in bytes (declared lengths): beyond, 503. */
    readonly bodyInflightMaxBytes: number;
    /** How long a request body may take to arrive before its connection is dropped. */
    readonly bodyReceiveTimeoutMs: number;
    /** Fastify's trustProxy: false, a number of proxy hops, or proxy addresses/CIDRs. */
    readonly trustProxy: false | number | string[];
    readonly corsOrigins: readonly string[];
    readonly shutdownTimeoutMs: number;
    /**
     * Once shutdown begins, how long work still in flight may go on (bodies
     * arriving, SQLite analytics queries): half of shutdownTimeoutMs, the
     * rest for the event queue's drain and the database's close.
     */
    readonly inFlightAtShutdownMs: number;
  };
  readonly rateLimit: {
    readonly ttlS: number;
    /** Requests per IP per window; 0 turns the general rate limit off. */
    readonly max: number;
    /** Where the counters live, shared by instances; null: in this process's memory. */
    readonly redisUrl: string | null;
  };
  readonly log: { readonly level: string };
  readonly database: {
    readonly type: 'sqlite' | 'postgres';
    readonly path: string;
    readonly url: string | undefined;
    readonly poolMax: number;
    readonly migrationsRun: boolean;
  };

  readonly users: {
    readonly registrationOpen: boolean;
    /** Bootstrap admin, created at start-up when both are set and the user does not exist. */
    readonly adminUsername: string | undefined;
    readonly adminPassword: string | undefined;
    /** log2 of scrypt's N. 17 is OWASP's minimum; tests lower it for speed. */
    readonly passwordHashCost: number;
  };
  readonly session: {
    readonly idleTimeoutS: number;
    readonly absoluteTimeoutS: number;
    readonly rememberIdleS: number;
    readonly rememberAbsoluteS: number;
    readonly touchIntervalS: number;
    readonly maxPerUser: number;
    readonly dataValueMaxBytes: number;
    readonly dataMaxBytes: number;
    readonly cleanupCron: string;
    readonly anonymousSessions: boolean;
    readonly freshAuthMaxAgeS: number;
    readonly cookieSecure: boolean;
    readonly loginMaxAttempts: number;
    readonly loginWindowS: number;
  };
  readonly tracking: {
    /** Automatic `api_request` events; explicit tracking is always on. */
    readonly enabled: boolean;
    /** How long explicit writes may wait for their commit (group commit). */
    readonly flushMs: number;
    /** How long automatic events alone may wait: nobody waits for them (see EventWriter). */
    readonly autoFlushMs: number;
    readonly batchMax: number;
    readonly queueMax: number;
    /** Approximate bytes of the queued rows (their text): beyond, 503 (and 413 for one too large). */
    readonly queueMaxBytes: number;
    readonly streamHeartbeatS: number;
    readonly ipAnonymization: boolean;
  };
  readonly analytics: {
    /** Feature name → the action names that make it up (FEATURES). */
    readonly features: Readonly<Record<string, readonly string[]>>;
    /** How long one analytics query may run before it is cancelled (503). */
    readonly queryTimeoutMs: number;
  };
  readonly preferences: { readonly supportedLanguages: readonly string[] };
  readonly compliance: {
    readonly consentTypes: readonly string[];
    readonly consentMode: 'opt-out' | 'opt-in';
    /** Days to keep each category; 0 keeps it forever. */
    readonly retention: {
      readonly eventsDays: number;
      readonly sessionEventsDays: number;
      readonly auditDays: number;
      readonly ipDays: number;
      readonly cron: string;
      readonly batch: number;
    };
  };
  readonly nodeEnv: 'development' | 'production' | 'test';

  constructor(env: Env) {
    this.nodeEnv = env.NODE_ENV;
    this.http = {
      port: env.PORT,
      host: env.HOST,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      bodyInflightMaxBytes: env.BODY_INFLIGHT_MAX_BYTES,
      bodyReceiveTimeoutMs: env.BODY_RECEIVE_TIMEOUT_S * 1000,
      trustProxy: env.TRUST_PROXY,
      corsOrigins: env.CORS_ORIGINS,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      inFlightAtShutdownMs: env.SHUTDOWN_TIMEOUT_MS / 2,
    };
    this.rateLimit = {
      ttlS: env.RATE_LIMIT_TTL_S,
      max: env.RATE_LIMIT_MAX,
      redisUrl: env.RATE_LIMIT_REDIS_URL ?? null,
    };
    this.log = { level: env.LOG_LEVEL };
    this.database = {
      type: env.DB_TYPE,
      path: env.DATABASE_PATH,
      url: env.DATABASE_URL,
      poolMax: env.DB_POOL_MAX,
      migrationsRun: env.MIGRATIONS_RUN,
    };
    this.users = {
      registrationOpen: env.REGISTRATION_OPEN,
      adminUsername: env.ADMIN_USERNAME,
      adminPassword: env.ADMIN_PASSWORD,
      passwordHashCost: env.PASSWORD_HASH_COST,
    };
    this.session = {
      idleTimeoutS: env.SESSION_IDLE_TIMEOUT_S,
      absoluteTimeoutS: env.SESSION_ABSOLUTE_TIMEOUT_S,
      rememberIdleS: env.SESSION_REMEMBER_IDLE_S,
      rememberAbsoluteS: env.SESSION_REMEMBER_ABSOLUTE_S,
      touchIntervalS: env.SESSION_TOUCH_INTERVAL_S,
      maxPerUser: env.SESSION_MAX_PER_USER,
      dataValueMaxBytes: env.SESSION_DATA_VALUE_MAX_BYTES,
      dataMaxBytes: env.SESSION_DATA_MAX_BYTES,
      cleanupCron: env.SESSION_CLEANUP_CRON,
      anonymousSessions: env.ANONYMOUS_SESSIONS,
      freshAuthMaxAgeS: env.FRESH_AUTH_MAX_AGE_S,
      cookieSecure: env.COOKIE_SECURE ?? env.NODE_ENV === 'production',
      loginMaxAttempts: env.LOGIN_MAX_ATTEMPTS,
      loginWindowS: env.LOGIN_WINDOW_S,
    };
    this.tracking = {
      enabled: env.TRACKING_ENABLED,
      flushMs: env.TRACKING_FLUSH_MS,
      autoFlushMs: env.TRACKING_AUTO_FLUSH_MS,
      batchMax: env.TRACKING_BATCH_MAX,
      queueMax: env.TRACKING_QUEUE_MAX,
      queueMaxBytes: env.TRACKING_QUEUE_MAX_BYTES,
      streamHeartbeatS: env.TRACKING_STREAM_HEARTBEAT_S,
      ipAnonymization: env.IP_ANONYMIZATION,
    };
    this.analytics = {
      features: env.FEATURES,
      queryTimeoutMs: env.ANALYTICS_QUERY_TIMEOUT_S * 1000,
    };
    this.preferences = { supportedLanguages: env.SUPPORTED_LANGUAGES };
    this.compliance = {
      consentTypes: env.CONSENT_TYPES,
      consentMode: env.TRACKING_CONSENT_MODE,
      retention: {
        eventsDays: env.RETENTION_EVENTS_DAYS,
        sessionEventsDays: env.RETENTION_SESSION_EVENTS_DAYS,
        auditDays: env.RETENTION_AUDIT_DAYS,
        ipDays: env.RETENTION_IP_DAYS,
        cron: env.RETENTION_CRON,
        batch: env.RETENTION_BATCH,
      },
    };
  }

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }
}

/** Validates `raw` (normally process.env) and returns the typed configuration. */
export function loadConfig(raw: NodeJS.ProcessEnv = process.env): AppConfig {
  const config = new AppConfig(parseEnv(raw));
  const { adminUsername, adminPassword } = config.users;
  if ((adminUsername === undefined) !== (adminPassword === undefined)) {
    throw new ConfigError(
      'Invalid configuration: ADMIN_USERNAME and ADMIN_PASSWORD must be set together',
    );
  }
  if (config.http.bodyInflightMaxBytes < config.http.bodyLimitBytes) {
    throw new ConfigError(
      'Invalid configuration: BODY_INFLIGHT_MAX_BYTES must be at least BODY_LIMIT_BYTES (a body of the largest allowed size must fit)',
    );
  }
  if (adminPassword !== undefined && (adminPassword.length < 8 || adminPassword.length > 256)) {
    throw new ConfigError('Invalid configuration: ADMIN_PASSWORD must be 8 to 256 characters');
  }
  return config;
}
