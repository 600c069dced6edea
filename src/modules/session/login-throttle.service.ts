import { HttpException, HttpStatus, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';

/** 429 carrying the seconds until the next attempt is allowed (sent as Retry-After). */
export class TooManyLoginAttemptsException extends HttpException {
  constructor(readonly retryAfterS: number) {
    super(
      {
        message: `Too many failed logins for this username from this address; try again in ${retryAfterS} s`,
        headers: { 'retry-after': String(retryAfterS) },
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * Login throttling per username + IP: more than LOGIN_MAX_ATTEMPTS failures
 * within LOGIN_WINDOW_S block further attempts, even with the right
 * password, until the oldest failure leaves the window. Counted in the
 * database so every app instance enforces the same limit.
 */
@Injectable()
export class LoginThrottleService {
  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
  ) {}

  keyFor(username: string, ip: string | null): string {
    return createHash('sha256')
      .update(`${username.toLowerCase()}\n${ip ?? ''}`)
      .digest('hex');
  }

  /** Throws TooManyLoginAttemptsException when the key is blocked. */
  async assertAllowed(key: string, now = Date.now()): Promise<void> {
    const { loginMaxAttempts, loginWindowS } = this.config.session;
    const windowStart = now - loginWindowS * 1000;
    const recent = await this.database.query<{ failed_at: number }>(
      'SELECT failed_at FROM login_failures WHERE key_hash = ? AND failed_at > ? ORDER BY failed_at DESC LIMIT ?',
      [key, windowStart, loginMaxAttempts],
    );
    if (recent.length < loginMaxAttempts) return;
    // Allowed again when the oldest of the last `max` failures leaves the window.
    const oldest = recent[recent.length - 1].failed_at;
    const retryAfterS = Math.max(1, Math.ceil((oldest + loginWindowS * 1000 - now) / 1000));
    throw new TooManyLoginAttemptsException(retryAfterS);
  }

  async recordFailure(key: string, now = Date.now()): Promise<void> {
    await this.database.execute('INSERT INTO login_failures (key_hash, failed_at) VALUES (?, ?)', [
      key,
      now,
    ]);
  }

  async reset(key: string): Promise<void> {
    await this.database.execute('DELETE FROM login_failures WHERE key_hash = ?', [key]);
  }
}
