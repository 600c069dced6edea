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
 *
 * An attempt is written down as a failure before the password is checked
 * (`begin`), and cleared by a success (`reset`). Checking first and writing
 * the failure after the slow password hash let every attempt that arrived
 * at once through the check: 60 parallel guesses against a limit of 5 all
 * got an answer. Now each attempt's row is committed before it counts the
 * window, so of attempts racing for the last free slots, each one counted
 * later sees every one counted before: at most the limit gets through. Racing
 * attempts may all be refused (each sees the others' rows), never all let in;
 * a refused attempt's row is removed, so refusals do not extend the block.
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

  /**
   * Takes one attempt for `key`: recorded as a failure until `reset` clears
   * the key after a successful login. Throws TooManyLoginAttemptsException
   * (recording nothing) when the key already has LOGIN_MAX_ATTEMPTS failures
   * in the window.
   */
  async begin(key: string, now = Date.now()): Promise<void> {
    const { loginMaxAttempts, loginWindowS } = this.config.session;
    const [attempt] = await this.database.query<{ id: number }>(
      'INSERT INTO login_failures (key_hash, failed_at) VALUES (?, ?) RETURNING id',
      [key, now],
    );
    const recent = await this.database.query<{ id: number; failed_at: number }>(
      `SELECT id, failed_at FROM login_failures WHERE key_hash = ? AND failed_at > ?
       ORDER BY failed_at DESC, id DESC LIMIT ?`,
      [key, now - loginWindowS * 1000, loginMaxAttempts + 1],
    );
    if (recent.length <= loginMaxAttempts) return;
    await this.database.execute('DELETE FROM login_failures WHERE id = ?', [attempt.id]);
    // Allowed again when the oldest of the last `max` other failures leaves the window.
    const others = recent.filter((r) => r.id !== attempt.id).slice(0, loginMaxAttempts);
    const oldest = others[others.length - 1].failed_at;
    const retryAfterS = Math.max(1, Math.ceil((oldest + loginWindowS * 1000 - now) / 1000));
    throw new TooManyLoginAttemptsException(retryAfterS);
  }

  async reset(key: string): Promise<void> {
    await this.database.execute('DELETE FROM login_failures WHERE key_hash = ?', [key]);
  }
}
