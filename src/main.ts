import { existsSync } from 'node:fs';
import { ConfigError } from './common/config/env.js';
import { loadConfig } from './common/config/config.js';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { prepareSqliteFile } from './common/database/data-source-options.js';

/**
 * Starts the server. Configuration is validated before anything else so a bad
 * value stops the process with one clear line and exit code 1.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, run shutdown
 * hooks (queues drain, the database closes), then exit 0 — or exit 1 if that
 * takes longer than SHUTDOWN_TIMEOUT_MS.
 */
async function bootstrap(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');

  let config;
  try {
    config = loadConfig(process.env);
    if (config.database.type === 'sqlite') prepareSqliteFile(config.database.path);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  const app = await createApp(config);
  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals) => {
    // A repeated signal (systemd signals the whole group, npm passes them on) must not end the
    // process before the first one's drain: it is logged and otherwise ignored.
    if (shuttingDown) {
      new Logger('Bootstrap').warn(`Received ${signal} again; still shutting down`);
      return;
    }
    shuttingDown = true;
    const logger = new Logger('Bootstrap');
    logger.log(`Received ${signal}; shutting down`);
    const timer = setTimeout(() => {
      logger.error(`Shutdown took longer than ${config.http.shutdownTimeoutMs} ms; exiting`);
      process.exit(1);
    }, config.http.shutdownTimeoutMs);
    timer.unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error(`Shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  await app.listen({ port: config.http.port, host: config.http.host });
  new Logger('Bootstrap').log(
    `Listening on http://${config.http.host}:${config.http.port} (docs at /docs)`,
    'Bootstrap',
  );
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(
    `Start-up failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
