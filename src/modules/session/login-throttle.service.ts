import { HttpException, HttpStatus, Injectable } from '@nestjs/common';
import { normalizeIp } from '@nestjs/throttler';
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
 * An attempt is written down as a failure before the password is checked,
 * and cleared by a success (`attempt`). Checking first and writing the
 * failure after the slow password hash let every attempt that arrived at
 * once through the check: 60 parallel guesses against a limit of 5 all got
 * an answer.
 * - Within an instance, attempts for the same username + IP run one after
 *   another, so each sees the outcome of the one before: exactly the limit
 *   is answered, and parallel logins with the right password all succeed.
 * - Across instances (PostgreSQL), each attempt's row is committed before it
 *   counts the window, so of attempts racing for the last free slots, each
 *   one counted later sees every one counted before: never more than the
 *   limit gets through (racing attempts on different instances may both be
 *   refused). A refused attempt's row is removed, so refusals do not extend
 *   the block.
 */
@Injectable()
export class LoginThrottleService {
  /** Per key, the end of the last attempt queued on this instance. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
  ) {}

  /**
   * The throttle key of `username` from `ip`. An IPv6 address counts as its
   * /64 (as in the general rate limit): one client usually holds a whole
   * /64, and counted per address it could guess without end by changing the
   * low bits. Not counted per username alone, on purpose: anyone could then
   * lock a user out by failing logins with their name.
   */
  keyFor(username: string, ip: string | null): string {
    return createHash('sha256')
      .update(`${username.toLowerCase()}\n${ip === null ? '' : normalizeIp(ip)}`)
      .digest('hex');
  }

  /**
   * Runs `verify` (the password check) as one attempt for `key`, after any
   * other attempt for the same key on this instance. Throws
   * TooManyLoginAttemptsException without calling `verify` when the key
   * already has LOGIN_MAX_ATTEMPTS failures in the window. The attempt stays
   * recorded as a failure when `verify` gives null; a result clears the key.
   */
  attempt<T>(key: string, verify: () => Promise<T | null>): Promise<T | null> {
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const run = previous.then(async () => {
      await this.begin(key);
      const result = await verify();
      if (result !== null) await this.reset(key);
      return result;
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.set(key, settled);
    void settled.then(() => {
      if (this.inFlight.get(key) === settled) this.inFlight.delete(key);
    });
    return run;
  }

  /**
   * Records an attempt as a failure; 429 (recording nothing) when the key is
   * blocked. One transaction: on SQLite a write outside one would run
   * outside the write lock and could join, and be rolled back with, another
   * request's transaction (see DatabaseService).
   */
  private async begin(key: string, now = Date.now()): Promise<void> {
    const { loginMaxAttempts, loginWindowS } = this.config.session;
    const retryAfterS = await this.database.transaction(async (manager) => {
      const [attempt] = await this.database.query<{ id: number }>(
        'INSERT INTO login_failures (key_hash, failed_at) VALUES (?, ?) RETURNING id',
        [key, now],
        manager,
      );
      const recent = await this.database.query<{ id: number; failed_at: number }>(
        `SELECT id, failed_at FROM login_failures WHERE key_hash = ? AND failed_at > ?
         ORDER BY failed_at DESC, id DESC LIMIT ?`,
        [key, now - loginWindowS * 1000, loginMaxAttempts + 1],
        manager,
      );
      if (recent.length <= loginMaxAttempts) return null;
      await this.database.executeIn(manager, 'DELETE FROM login_failures WHERE id = ?', [
        attempt.id,
      ]);
      // Allowed again when the oldest of the last `max` other failures leaves the window.
      const others = recent.filter((r) => r.id !== attempt.id).slice(0, loginMaxAttempts);
      const oldest = Number(others[others.length - 1].failed_at);
      return Math.max(1, Math.ceil((oldest + loginWindowS * 1000 - now) / 1000));
    });
    if (retryAfterS !== null) throw new TooManyLoginAttemptsException(retryAfterS);
  }

  private async reset(key: string): Promise<void> {
    await this.database.execute('DELETE FROM login_failures WHERE key_hash = ?', [key]);
  }
}
