import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import metadata from '../../metadata.js';

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
      { type: 'http', scheme: 'bearer', description: 'The session token' },
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
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
