import type { Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  FastifyError,
  FastifyReply,
  FastifyRequest,
  LogController,
  onSendHookHandler,
} from 'fastify';
import { normalizeIp } from '@nestjs/throttler';
import helmet from 'helmet';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  createLogger,
  lazyRequestLogger,
  logRequests,
  PinoNestLogger,
} from './common/logging/logger.js';
import { APP_INFO } from './app.info.js';
import { AppModule } from './app.module.js';
import { AppConfig } from './common/config/config.js';
import { errorBody } from './common/filters/all-exceptions.filter.js';
import { MethodRouter } from './common/http/method-router.js';
import { refuseUnexpectedBodies, routeRules } from './common/http/route-rules.js';
import { generateRequestId } from './common/http/request-id.js';
import { setupSwagger } from './common/swagger/swagger.js';

const isJson = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/**
 * Could this JSON text hold a number beyond a double's range (`1e309`, 309
 * digits)? JSON.parse makes those Infinity, which JSON.stringify then stores
 * as null: a value silently changed. A cheap scan of the text; a string may
 * match too, so a match only means the parsed value gets checked.
 */
const MAYBE_HUGE_NUMBER = /\d[eE]\+?\d{3}|\d{309}/;

/** Whether `value` holds a number that is not finite (walked without recursion: JSON may nest deeply). */
function holdsNonFiniteNumber(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'number' && !Number.isFinite(item)) return true;
    // One by one: spreading 120,000 array items into push() overflowed the stack.
    if (item !== null && typeof item === 'object') {
      for (const child of Object.values(item) as unknown[]) pending.push(child);
    }
  }
  return false;
}

const invalidUtf8 = () =>
  Object.assign(new Error('Body is not valid UTF-8'), {
    statusCode: 400,
    code: 'FST_ERR_CTP_INVALID_UTF8',
  });

const nonFiniteNumber = () =>
  Object.assign(new Error('Body contains a number too large to be represented (like 1e309)'), {
    statusCode: 400,
    code: 'FST_ERR_CTP_INVALID_NUMBER',
  });

/** The 400 for a JSON body with a key that could pollute prototypes. */
const forbiddenKey = () =>
  Object.assign(
    new Error('Body contains a forbidden key: __proto__, or prototype inside constructor'),
    { statusCode: 400, code: 'FST_ERR_CTP_FORBIDDEN_KEY' },
  );

/**
 * Bounds the bytes of request bodies being received and parsed at once
 * (BODY_INFLIGHT_MAX_BYTES), by their declared length (a chunked body counts
 * as BODY_LIMIT_BYTES): beyond it, 503 with Retry-After before the body is
 * read. BODY_LIMIT_BYTES bounds one body; without this, a thousand
 * concurrent 250 KB bodies (a parsed body takes several times its size)
 * filled the default 256 MB heap and killed the process. Released when the
 * response is done or the connection dropped. `admit` is the check, run in
 * the onRequest hook (no hook of its own on the hot path); it answers and
 * returns false when the request is refused.
 *
 * So that the budget cannot be held by one client sending bodies slowly (64
 * connections that declared 256 KB and sent one byte each refused every
 * body for as long as they stayed open): one client address (an IPv6 /64)
 * holds at most a quarter of it (429 beyond), and a body not received
 * within BODY_RECEIVE_TIMEOUT_S has its connection dropped.
 *
 * `closing(ms)` (at shutdown) brings every such deadline to within `ms`:
 * the shutdown waits for requests in flight, and one client sending a body
 * slowly held it past SHUTDOWN_TIMEOUT_MS, so the process exited 1 before
 * the event queue's drain and the database's close (found by review).
 */
function bodiesInFlight(config: AppConfig) {
  const { bodyInflightMaxBytes: budget, bodyLimitBytes, bodyReceiveTimeoutMs } = config.http;
  const perClient = Math.max(bodyLimitBytes, Math.floor(budget / 4));
  let inFlight = 0;
  const heldBy = new Map<string, number>();
  /** Bodies still arriving: when each must have arrived, and the timer that drops it then. */
  const arriving = new Map<FastifyRequest['raw'], { deadline: number; timer: NodeJS.Timeout }>();
  /** No body may arrive after this (set at shutdown). */
  let lastDeadline = Infinity;
  const dropAt = (raw: FastifyRequest['raw'], deadline: number) => {
    const timer = setTimeout(() => raw.destroy(), Math.max(0, deadline - Date.now()));
    arriving.set(raw, { deadline, timer });
  };
  const settle = (raw: FastifyRequest['raw']) => {
    clearTimeout(arriving.get(raw)?.timer);
    arriving.delete(raw);
  };
  const closing = (ms: number): void => {
    lastDeadline = Date.now() + ms;
    for (const [raw, { deadline, timer }] of arriving) {
      if (deadline <= lastDeadline) continue;
      clearTimeout(timer);
      dropAt(raw, lastDeadline);
    }
  };
  const admit = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const { 'content-length': length, 'transfer-encoding': chunked } = request.headers;
    if (length === undefined && chunked === undefined) return true;
    const declared = Number(length ?? 0);
    const size =
      chunked !== undefined
        ? bodyLimitBytes
        : Number.isFinite(declared)
          ? Math.min(declared, bodyLimitBytes)
          : 0;
    if (size <= 0) return true;
    const client = normalizeIp(request.ip);
    const held = heldBy.get(client) ?? 0;
    const refusal =
      held + size > perClient
        ? errorBody(429, 'Too many request bodies in flight from this address', request.id, null)
        : inFlight + size > budget
          ? errorBody(503, 'Too many request bodies in flight; retry shortly', request.id, null)
          : null;
    if (refusal) {
      void reply.code(refusal.status_code).header('retry-after', '1').send(refusal);
      return false;
    }
    inFlight += size;
    heldBy.set(client, held + size);
    dropAt(request.raw, Math.min(Date.now() + bodyReceiveTimeoutMs, lastDeadline));
    request.raw.once('end', () => settle(request.raw));
    reply.raw.once('close', () => {
      settle(request.raw);
      inFlight -= size;
      const left = (heldBy.get(client) ?? size) - size;
      if (left > 0) heldBy.set(client, left);
      else heldBy.delete(client);
    });
    return true;
  };
  return { admit, closing };
}

/** Fastify trustProxy function: the `hops` proxies nearest to the service are believed. */
const trustHops =
  (hops: number) =>
  (_address: string, hop: number): boolean =>
    hop < hops;

/**
 * Builds the fully configured application (used by main.ts, the e2e tests and
 * the benchmarks, so all three run the same pipeline). Not yet listening.
 */
export async function createApp(
  config: AppConfig,
  extraImports: Type[] = [],
): Promise<NestFastifyApplication> {
  const logger = createLogger(config);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // One completion line per request is written by logRequests instead.
    logController: new LogController({
      requestIdLogLabel: 'request_id',
      disableRequestLogging: true,
    }),
    bodyLimit: config.http.bodyLimitBytes,
    // A number of hops as Fastify's function form (the adapter's types take no number).
    trustProxy:
      typeof config.http.trustProxy === 'number'
        ? trustHops(config.http.trustProxy)
        : config.http.trustProxy,
    requestIdHeader: false,
    genReqId: generateRequestId,
    childLoggerFactory: lazyRequestLogger,
    // Path parameters longer than this get 414; session data keys alone may be 128 characters.
    routerOptions: { maxParamLength: 512 },
    // Close idle keep-alive sockets on shutdown so SIGTERM is not held up by them.
    forceCloseConnections: 'idle',
    // During shutdown Fastify would answer with its own non-JSON 503. Instead the last
    // request on each open connection is served normally (with `Connection: close`).
    return503OnClosing: false,
    // Errors Node's HTTP parser raises before there is a request (headers over the size
    // limit: 431, a request timeout: 408, malformed HTTP: 400) get the same JSON shape too,
    // instead of Fastify's own `{"error","message","statusCode"}`.
    clientErrorHandler: answerClientError,
    // Errors Fastify's router raises before any route runs (over-long path parameter: 414,
    // malformed URL encoding: 400) never reach Nest's filter: give them the same body.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode ?? 400;
      void reply
        .code(status)
        .header('x-request-id', request.id)
        .send(errorBody(status, error.message, String(request.id), null));
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, extraImports),
    adapter,
    {
      bufferLogs: true,
      abortOnError: false,
      // Fastify's own JSON parser is the only body parser: Nest's default would add a form
      // (application/x-www-form-urlencoded) parser at init. See removeContentTypeParser below.
      bodyParser: false,
    },
  );
  app.useLogger(new PinoNestLogger(logger));

  const fastify = app.getHttpAdapter().getInstance();
  app.get(MethodRouter).attach(fastify);
  logRequests(fastify, logger);
  // Only JSON bodies are accepted (415 otherwise): text/plain would reach handlers as a string,
  // and form bodies (bodyParser: false above) as objects. A form posted from another site
  // must not be able to sign someone in or change their settings.
  fastify.removeContentTypeParser(['text/plain']);
  // An empty body with a JSON content type is no body (some clients label every request
  // that way, DELETE included); routes that need a body then refuse its absence themselves.
  // Anything else goes to Fastify's own parser, prototype-poisoning guard included.
  const parseJson = fastify.getDefaultJsonParser(
    fastify.initialConfig.onProtoPoisoning ?? 'error',
    fastify.initialConfig.onConstructorPoisoning ?? 'error',
  );
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw, done) => {
    const bytes = raw as Buffer;
    if (bytes.length === 0) return done(null, undefined);
    // Decoding would replace bad bytes with U+FFFD and store text the client never sent.
    if (!isUtf8(bytes)) return done(invalidUtf8(), undefined);
    const body = bytes.toString('utf8');
    // The parser calls its callback again with anything the callback throws, as if parsing
    // had failed: a throw in the checks below once passed for a forbidden key. So the checks
    // catch their own errors, and only the first call answers.
    let answered = false;
    void parseJson(request, body, (error, value) => {
      if (answered) return;
      answered = true;
      let refusal: Error | null;
      try {
        // Valid JSON refused all the same: a `__proto__` or `constructor.prototype` key, which
        // Fastify's guard refuses; "not valid JSON" would send the client looking for a typo.
        if (error) refusal = isJson(body) ? forbiddenKey() : error;
        else if (MAYBE_HUGE_NUMBER.test(body) && holdsNonFiniteNumber(value)) {
          refusal = nonFiniteNumber();
        } else refusal = null;
      } catch (thrown) {
        refusal = thrown instanceof Error ? thrown : new Error(String(thrown));
      }
      done(refusal, refusal ? undefined : value);
    });
  });
  // Security headers, the request id, and no-store on every API answer (they carry tokens,
  // session state or someone's data; no shared cache may keep one): one synchronous hook,
  // no per-request middleware chain.
  const securityHeaders = staticSecurityHeaders(config);
  const bodies = bodiesInFlight(config);
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.headers(securityHeaders).header('x-request-id', request.id);
    // PostgreSQL text cannot hold NUL: a %00 in a path or query value would fail the query
    // there (500) while SQLite answers. Refused for every route, on both databases alike.
    if (request.url.includes('%00')) {
      void reply
        .code(400)
        .send(errorBody(400, 'The URL must not contain NUL characters (%00)', request.id, null));
      return;
    }
    // Bodies are read as they come: a compressed one would only fail as "malformed JSON".
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      void reply
        .code(415)
        .send(
          errorBody(
            415,
            `Content-Encoding "${encoding.slice(0, 32)}" is not supported: send the body uncompressed`,
            request.id,
            null,
          ),
        );
      return;
    }
    if (request.url.startsWith('/api/') || request.url.startsWith('/auth/')) {
      void reply.header('cache-control', 'no-store');
    }
    if (bodies.admit(request, reply)) done();
  });

  // An Expect header other than 100-continue: Node answers 417 itself, with an empty body and
  // none of the headers every other answer has, unless someone listens for it.
  fastify.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const requestId = generateRequestId(request);
    const message = 'Unsupported Expect header: only "100-continue" is understood';
    const body = JSON.stringify(errorBody(417, message, requestId, null));
    response.writeHead(417, {
      ...securityHeaders,
      'x-request-id': requestId,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
  });

  // At shutdown Node closes only the keep-alive sockets idle at that instant; a request
  // still running then leaves its socket open afterwards, holding the close up until the
  // client hangs up. Reap sockets as they fall idle while in-flight requests finish.
  // Bodies still arriving get inFlightAtShutdownMs; the drain after them has the rest.
  fastify.addHook('preClose', (done) => {
    bodies.closing(config.http.inFlightAtShutdownMs);
    const reaper = setInterval(() => fastify.server.closeIdleConnections(), 50);
    reaper.unref();
    fastify.server.once('close', () => clearInterval(reaper));
    done();
  });

  if (config.http.corsOrigins.length > 0) {
    // Every method the API uses: the CORS library's default (GET, HEAD, POST) kept the allowed
    // origins from writing session data, preferences, revocations and erasures.
    app.enableCors({
      origin: [...config.http.corsOrigins],
      credentials: true,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    });
    // The CORS plugin answers preflights from its own onRequest hook, which runs before the
    // one that sets the security headers and the request id: its answers get them here. It
    // also answers an OPTIONS request that is no preflight (no Origin or no
    // Access-Control-Request-Method) with a plain-text 400; every error is JSON here.
    // Attached to the plugin's OPTIONS route alone: other responses run no hook for it.
    const preflightResponses: onSendHookHandler = (request, reply, payload, done) => {
      void reply.headers(securityHeaders).header('x-request-id', request.id);
      if (reply.statusCode !== 400 || typeof payload !== 'string') return done(null, payload);
      void reply.type('application/json; charset=utf-8');
      const message =
        'Not a CORS preflight request: OPTIONS needs the Origin and Access-Control-Request-Method headers';
      done(null, JSON.stringify(errorBody(400, message, request.id, null)));
    };
    fastify.addHook('onRoute', (route) => {
      if (route.method === 'OPTIONS')
        route.onSend = [...[route.onSend ?? []].flat(), preflightResponses];
    });
  }

  refuseUnexpectedBodies(fastify, routeRules(app));

  await setupSwagger(app, APP_INFO.version);
  await app.init();
  return app;
}

/**
 * Helmet's headers for our options, computed once: with no nonces or
 * functions among the directives they do not depend on the request, so
 * running helmet's middleware chain on every request would only repeat them.
 */
function staticSecurityHeaders(config: AppConfig): Record<string, string> {
  const headers: Record<string, string> = {};
  const collector = {
    setHeader: (name: string, value: string | number) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  helmet({
    // Swagger UI loads its own scripts and inline styles from this origin.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        scriptSrc: ["'self'"],
        // Plain-HTTP deployments (local, behind a TLS proxy) must still load /docs.
        upgradeInsecureRequests: null,
      },
    },
    strictTransportSecurity: config.isProduction,
  })({} as IncomingMessage, collector as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error as Error;
  });
  return headers;
}

/** Fastify's default client error handling (see `defaultClientErrorHandler`), in our error shape. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'The request headers (the URL included) are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request took too long to arrive']
        : [400, 'Malformed HTTP request'];
  const requestId = randomUUID(); // no request was parsed: nothing of the caller to keep
  const body = JSON.stringify(errorBody(status, message, requestId, null));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
