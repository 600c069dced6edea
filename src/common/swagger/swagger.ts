import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, getSchemaPath, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import metadata from '../../metadata.js';
import { AppConfig } from '../config/config.js';
import { RouteRule, routeRules, UNSAFE_METHODS } from '../http/route-rules.js';
import { ErrorResponseDto } from './error-response.dto.js';

/** Security scheme names, referenced by `@ApiSecurity` / `@ApiCookieAuth` on controllers. */
export const SECURITY = {
  cookie: 'session_cookie',
  bearer: 'bearer',
  header: 'session_header',
} as const;

/**
 * Swagger UI at /docs and the OpenAPI JSON at /docs-json. DTO properties come
 * from the CLI plugin's metadata, generated ahead of time into src/metadata.ts
 * (scripts/generate-swagger-metadata.mjs).
 */
export async function setupSwagger(app: INestApplication, version: string): Promise<void> {
  await SwaggerModule.loadPluginMetadata(metadata);
  const config = new DocumentBuilder()
    .setTitle('Session, activity and compliance service')
    .setDescription(
      'Sessions (cookie `session_id`, `Authorization: Bearer`, or `X-Session-ID`), activity tracking, ' +
        'analytics, preferences and GDPR compliance. Every error is JSON with `status_code`, `error`, ' +
        '`message`, `request_id` and `session_id`.',
    )
    .setVersion(version)
    .addCookieAuth(
      'session_id',
      { type: 'apiKey', in: 'cookie', name: 'session_id' },
      SECURITY.cookie,
    )
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'opaque',
        description: 'The session token (opaque, not a JWT)',
      },
      SECURITY.bearer,
    )
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Session-ID' }, SECURITY.header)
    .addSecurityRequirements(SECURITY.cookie)
    .addSecurityRequirements(SECURITY.bearer)
    .addSecurityRequirements(SECURITY.header)
    .addTag('system', 'Service information and health')
    .addTag('auth', 'Registration, login, logout, re-authentication, password change')
    .addTag('session', 'The current session, its data, and the device list')
    .addTag('tracking', 'Page views, actions, client batches, activity history, live stream')
    .addTag(
      'analytics',
      'Summaries, active users, pages, sessions, journeys, patterns, funnels, retention',
    )
    .addTag('preferences', 'Typed preferences with defaults and privacy settings')
    .addTag(
      'compliance',
      'Consent ledger, export (right of access), erasure (right to be forgotten)',
    )
    .addTag('admin', 'Administration (admin role)')
    .build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [ErrorResponseDto] });
  documentErrors(document, routeRules(app), app.get(AppConfig));
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}

/**
 * The error answers each operation can give, derived from its route's
 * rules (the session guard's decorators) instead of written on every
 * handler: 400 when it takes input, 401 unless public, 403 for admin routes,
 * fresh-auth routes and cookie writes from a foreign origin, 413 and 415
 * when it takes a body or refuses one, 429 while the general rate limit
 * counts it. Public operations say a session is optional (`security` with
 * `{}`). Every
 * 4xx/5xx response gets the error body's schema; descriptions written on a
 * handler are kept.
 */
function documentErrors(document: OpenAPIObject, rules: RouteRule[], config: AppConfig): void {
  const { max, ttlS } = config.rateLimit;
  const errorContent = {
    'application/json': { schema: { $ref: getSchemaPath(ErrorResponseDto) } },
  };
  for (const rule of rules) {
    const path = rule.pattern.replace(/:([A-Za-z_]+)/g, '{$1}');
    const operation = document.paths[path]?.[rule.method.toLowerCase() as 'get'];
    if (!operation) continue;
    const responses = operation.responses;
    const add = (code: string, description: string) => {
      const written = responses[code] as { description?: string } | undefined;
      responses[code] = {
        ...written,
        description: written?.description
          ? `${written.description}; or ${description}`
          : description,
      };
    };
    // A session is optional on public routes (a stale token counts as none): `{}` says so.
    if (rule.isPublic) {
      operation.security = [{}, ...(document.security ?? [])];
    }
    const bodiless = UNSAFE_METHODS.has(rule.method) && !rule.takesBody;
    if ((operation.parameters?.length ?? 0) > 0 || operation.requestBody) {
      add('400', 'Invalid input: `message` says what, `details` names the fields');
    }
    // Routes that take no body refuse one (refuseUnexpectedBodies) before the session check.
    if (bodiless) add('400', 'A body with fields: this route takes none');
    if (!rule.isPublic) {
      add(
        '401',
        rule.allowAnonymous
          ? 'No valid session (missing, unknown, expired or revoked)'
          : 'No valid user session (missing, unknown, expired, revoked, or anonymous)',
      );
    }
    if (rule.adminOnly) add('403', 'This operation needs the admin role');
    if (rule.needsFreshAuth) {
      add('403', '`reauth_required`: confirm the password first (POST /auth/reauth)');
    }
    if (UNSAFE_METHODS.has(rule.method)) {
      add('403', '`csrf_rejected`: a cookie-authenticated request from a foreign origin');
    }
    if (rule.takesBody || bodiless) {
      add('413', `The body is larger than ${config.http.bodyLimitBytes} bytes (BODY_LIMIT_BYTES)`);
      add('415', 'The body is not JSON (`Content-Type: application/json`)');
    }
    if (rule.rateLimited && max > 0) {
      add(
        '429',
        `More than ${max} requests from this address in ${ttlS} s (RATE_LIMIT_MAX); see Retry-After`,
      );
    }
    for (const [code, response] of Object.entries(responses)) {
      if (!response || '$ref' in response) continue;
      if (/^[45]/.test(code)) response.content ??= errorContent;
      // A CSV download is text, not the JSON document's schema the decorator gave both types.
      if (response.content?.['text/csv'])
        response.content['text/csv'] = { schema: { type: 'string' } };
    }
  }
}
