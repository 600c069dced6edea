import { Injectable, OnApplicationBootstrap, UnauthorizedException } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import type { AuthSession, AuthUser, Role } from '../../common/auth/auth-context.js';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { RowCache } from '../../common/database/row-cache.js';
import { toIso } from '../../common/time.js';
import { describeDevice } from './device.js';
import { SessionDto } from './dto/session.dto.js';
import { Session } from './entities/session.entity.js';
import { RevokeReason } from './entities/session-event.entity.js';
import { SessionEventsService } from './session-events.service.js';
import {
  SESSION_LOGIN,
  SESSION_LOGOUT,
  SessionLoginEvent,
  SessionLogoutEvent,
} from './session.events.js';
import { generateSessionToken, hashSessionToken, SESSION_TOKEN_PATTERN } from './session-token.js';

/** Where a request came from, recorded on sessions and their events. */
export interface ClientMeta {
  ip: string | null;
  userAgent: string | null;
}

/** A session together with its secret token, which exists only in this response. */
export interface IssuedSession {
  token: string;
  session: AuthSession;
}

export const UNAUTHORIZED_MESSAGE = 'Authentication required: no valid session';
/** The one answer to a failed login, whatever failed (no account enumeration). */
export const INVALID_CREDENTIALS = 'Invalid username or password';

/** Row of the session check: one indexed lookup joined with the user. */
interface AuthRow {
  id: string;
  user_id: string | null;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  auth_time: number | null;
  remember_me: number | boolean;
  ip: string | null;
  user_agent: string | null;
  revoked_at: number | null;
  username: string | null;
  role: Role | null;
  disabled: number | boolean | null;
}

const AUTH_SQL = `
  SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.idle_expires_at, s.absolute_expires_at,
         s.auth_time, s.remember_me, s.ip, s.user_agent, s.revoked_at,
         u.username, u.role, u.disabled
  FROM sessions s LEFT JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = ?`;

const LIVE = 'revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?';

/**
 * Session lifecycle: issue, check, rotate, revoke. Tokens are generated here
 * and leave only in the IssuedSession handed to the controller; the database
 * sees their SHA-256 only.
 */
@Injectable()
export class SessionService implements OnApplicationBootstrap {
  /** Session check rows by token hash (SQLite; see RowCache for why it is exact). */
  private readonly authRows: RowCache<AuthRow>;

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly sessionEvents: SessionEventsService,
    private readonly emitter: EventEmitter2,
  ) {
    this.authRows = new RowCache<AuthRow>(database, AUTH_SQL);
  }

  /** After migrations: any write to a session row drops its entry; any user change drops all. */
  onApplicationBootstrap(): void {
    this.authRows.enable(
      'Session check',
      () =>
        this.database.watchWrites('sessions', 'token_hash', (hash) =>
          this.authRows.invalidate(hash),
        ) && this.database.watchWrites('users', 'id', () => this.authRows.clear()),
    );
  }

  /**
   * The hot path: the session and user for `token`, or null when it is
   * unknown, revoked, expired (idle or absolute) or its user is disabled.
   * Writes only when SESSION_TOUCH_INTERVAL_S has passed since the last write;
   * never with `touch` false (a check that is not the user's activity).
   */
  async authenticate(
    token: string,
    now = Date.now(),
    touch = true,
  ): Promise<{ session: AuthSession; user: AuthUser | null } | null> {
    if (!SESSION_TOKEN_PATTERN.test(token)) return null;
    const tokenHash = hashSessionToken(token);
    const [row] = await this.authRows.rows(tokenHash, [tokenHash]);
    if (!row || row.revoked_at !== null) return null;
    if (row.idle_expires_at <= now || row.absolute_expires_at <= now) return null;
    if (row.user_id !== null && (row.username === null || Boolean(row.disabled))) return null;

    const session: AuthSession = {
      id: row.id,
      userId: row.user_id,
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
      idleExpiresAt: row.idle_expires_at,
      absoluteExpiresAt: row.absolute_expires_at,
      authTime: row.auth_time,
      rememberMe: Boolean(row.remember_me),
      ip: row.ip,
      userAgent: row.user_agent,
      tokenHash,
    };
    if (touch && now - session.lastSeenAt >= this.config.session.touchIntervalS * 1000) {
      await this.touch(session, now);
    }
    const user =
      row.user_id !== null ? { id: row.user_id, username: row.username!, role: row.role! } : null;
    return { session, user };
  }

  async createAnonymous(meta: ClientMeta): Promise<IssuedSession> {
    const issued = this.newSession(null, false, meta, Date.now());
    await this.database.transaction(async (manager) => {
      await this.insert(manager, issued);
      await this.sessionEvents.record(manager, [
        {
          sessionId: issued.session.id,
          userId: null,
          type: 'created',
          ip: meta.ip,
          at: Date.now(),
        },
      ]);
    });
    return issued;
  }

  /**
   * Starts a user session after the password was verified. An anonymous
   * current session is upgraded in place (same public id and data, new
   * token); a user's current session is replaced. Beyond
   * SESSION_MAX_PER_USER, the least recently seen sessions are evicted, in
   * the same transaction.
   */
  async login(
    user: AuthUser,
    verifiedPasswordHash: string,
    rememberMe: boolean,
    meta: ClientMeta,
    current: AuthSession | undefined,
  ): Promise<IssuedSession> {
    const now = Date.now();
    let upgraded = false;
    const issued = await this.database.transaction(async (manager) => {
      await this.database.lockRow(manager, 'users', user.id);
      // The password was verified before this transaction (scrypt takes a while): a password
      // change, a disable or an erasure committed meanwhile must not let this login through.
      const [account] = await this.database.query<{ password_hash: string; disabled: unknown }>(
        'SELECT password_hash, disabled FROM users WHERE id = ?',
        [user.id],
        manager,
      );
      if (!account || Boolean(account.disabled) || account.password_hash !== verifiedPasswordHash) {
        throw new UnauthorizedException(INVALID_CREDENTIALS);
      }
      let issuedHere: IssuedSession | null = null;
      if (current && current.userId === null) {
        issuedHere = await this.upgradeAnonymous(manager, current, user, rememberMe, meta, now);
        upgraded = issuedHere !== null;
      } else if (current) {
        // A login as someone else ends the session presented with it. Its log entry carries
        // the address only when it is the same user's: another person's address is not
        // theirs to see (it would reach their export).
        const ip = current.userId === user.id ? meta.ip : null;
        await this.revokeIn(manager, [current.id], 'logout', ip, now);
      }
      if (!issuedHere) {
        issuedHere = this.newSession(user.id, rememberMe, meta, now);
        await this.insert(manager, issuedHere);
        await this.sessionEvents.record(manager, [
          {
            sessionId: issuedHere.session.id,
            userId: user.id,
            type: 'created',
            reason: 'login',
            ip: meta.ip,
            at: now,
          },
        ]);
      }
      await this.evictBeyondLimit(manager, user.id, issuedHere.session.id, meta.ip, now);
      return issuedHere;
    });
    // Awaited: listeners stitch anonymous events to the user before the login answers.
    await this.emitter.emitAsync(
      SESSION_LOGIN,
      new SessionLoginEvent(issued.session.id, user.id, upgraded, meta.ip, meta.userAgent, now),
    );
    return issued;
  }

  /**
   * New token for the same session, killing the old one in the same write.
   * `stampAuthTime` records a fresh password proof (reauth, password change).
   * `inTransaction` lets the caller add its own writes (password change).
   */
  async rotate(
    session: AuthSession,
    reason: 'reauth' | 'password_change',
    meta: ClientMeta,
    inTransaction?: (manager: EntityManager) => Promise<void>,
  ): Promise<IssuedSession> {
    const now = Date.now();
    const token = generateSessionToken();
    const idleExpiresAt = Math.min(
      now + this.idleMs(session.rememberMe),
      session.absoluteExpiresAt,
    );
    await this.database.transaction(async (manager) => {
      // The user row first, as the erasure and the login lock it: locking the session first
      // deadlocked two password changes of one user on PostgreSQL. A password change writes
      // the user row (FOR UPDATE); a reauth only needs it to stay (FOR KEY SHARE).
      if (session.userId !== null) {
        if (reason === 'password_change') {
          await this.database.lockRow(manager, 'users', session.userId);
        } else if ((await this.database.missingUsers([session.userId], manager)).size > 0) {
          throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
        }
      }
      const changed = await this.database.executeIn(
        manager,
        `UPDATE sessions SET token_hash = ?, auth_time = ?, last_seen_at = ?, idle_expires_at = ?
         WHERE id = ? AND token_hash = ? AND revoked_at IS NULL
         AND idle_expires_at > ? AND absolute_expires_at > ?`,
        [hashSessionToken(token), now, now, idleExpiresAt, session.id, session.tokenHash, now, now],
      );
      if (changed === 0) throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
      await this.sessionEvents.record(manager, [
        {
          sessionId: session.id,
          userId: session.userId,
          type: reason === 'reauth' ? 'renewed' : 'rotated',
          reason,
          ip: meta.ip,
          at: now,
        },
      ]);
      if (inTransaction) await inTransaction(manager);
    });
    return {
      token,
      session: {
        ...session,
        authTime: now,
        lastSeenAt: now,
        idleExpiresAt,
        tokenHash: hashSessionToken(token),
      },
    };
  }

  /** Revokes sessions by public id; returns how many were still live. */
  async revoke(sessionIds: string[], reason: RevokeReason, ip: string | null): Promise<number> {
    if (sessionIds.length === 0) return 0;
    const now = Date.now();
    return this.database.transaction((manager) =>
      this.revokeIn(manager, sessionIds, reason, ip, now),
    );
  }

  /** Ends the caller's session (logout). */
  async logout(session: AuthSession, meta: ClientMeta): Promise<void> {
    await this.revoke([session.id], 'logout', meta.ip);
    this.emitter.emit(
      SESSION_LOGOUT,
      new SessionLogoutEvent(session.id, session.userId, meta.ip, meta.userAgent, Date.now()),
    );
  }

  /**
   * Revokes every live session of a user, except `exceptSessionId`. Runs in
   * the caller's transaction when `manager` is given.
   */
  async revokeAllForUser(
    userId: string,
    reason: RevokeReason,
    ip: string | null,
    options: { exceptSessionId?: string; manager?: EntityManager } = {},
  ): Promise<number> {
    const now = Date.now();
    const work = async (manager: EntityManager) => {
      const rows = await this.database.query<{ id: string }>(
        'SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL',
        [userId],
        manager,
      );
      const ids = rows.map((r) => r.id).filter((id) => id !== options.exceptSessionId);
      return this.revokeIn(manager, ids, reason, ip, now);
    };
    return options.manager ? work(options.manager) : this.database.transaction(work);
  }

  /** A user's live sessions, most recently active first. */
  async listLive(userId: string): Promise<Session[]> {
    const now = Date.now();
    return this.database.dataSource
      .getRepository(Session)
      .createQueryBuilder('s')
      .where('s.userId = :userId', { userId })
      .andWhere('s.revokedAt IS NULL')
      .andWhere('s.idleExpiresAt > :now AND s.absoluteExpiresAt > :now', { now })
      .orderBy('s.lastSeenAt', 'DESC')
      .addOrderBy('s.createdAt', 'DESC')
      .getMany();
  }

  /**
   * Public ids of every session row of a user, live or not. `lock`: on
   * PostgreSQL the rows stay locked FOR UPDATE until `manager`'s transaction
   * ends (the erasure's; see DatabaseService.missingSessions).
   */
  async sessionIdsOf(
    userId: string,
    manager?: EntityManager,
    { lock = false } = {},
  ): Promise<string[]> {
    const forUpdate = lock && this.database.isPostgres ? ' FOR UPDATE' : '';
    const rows = await this.database.query<{ id: string }>(
      `SELECT id FROM sessions WHERE user_id = ?${forUpdate}`,
      [userId],
      manager,
    );
    return rows.map((r) => r.id);
  }

  /**
   * Deletes a user's sessions (their data goes by ON DELETE CASCADE) and their
   * session events inside the erasure transaction.
   */
  async eraseUser(
    userId: string,
    sessionIds: string[],
    manager: EntityManager,
  ): Promise<{ sessions: number; sessionData: number; sessionEvents: number }> {
    const ids = [...new Set([...sessionIds, ...(await this.sessionIdsOf(userId, manager))])];
    let sessionData = 0;
    let sessionEvents = await this.database.executeIn(
      manager,
      'DELETE FROM session_events WHERE user_id = ?',
      [userId],
    );
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const list = chunk.map(() => '?').join(', ');
      sessionData += await this.database.executeIn(
        manager,
        `DELETE FROM session_data WHERE session_id IN (${list})`,
        chunk,
      );
      sessionEvents += await this.database.executeIn(
        manager,
        `DELETE FROM session_events WHERE session_id IN (${list})`,
        chunk,
      );
    }
    const sessions = await this.database.executeIn(
      manager,
      'DELETE FROM sessions WHERE user_id = ?',
      [userId],
    );
    return { sessions, sessionData, sessionEvents };
  }

  /**
   * Every session of a user (live or not yet cleaned up), oldest first, for
   * exports: each as GET /api/session shows it, with its revocation; and the
   * session values, with when each was last set.
   */
  async exportUser(userId: string) {
    const sessions = await this.database.dataSource
      .getRepository(Session)
      .find({ where: { userId }, order: { createdAt: 'ASC' } });
    const data = await this.database.query<{
      session_id: string;
      key: string;
      value: string;
      updated_at: number;
    }>(
      `SELECT d.session_id, d.key, d.value, d.updated_at FROM session_data d JOIN sessions s ON s.id = d.session_id
       WHERE s.user_id = ? ORDER BY d.session_id, d.key`,
      [userId],
    );
    // Keys are user-chosen: `__proto__` is a valid one, and assigning it to a plain object
    // would set the prototype instead of adding the key (and drop it from the export).
    const keyed = <T>(bySession: Record<string, Record<string, T>>, sessionId: string) =>
      (bySession[sessionId] ??= Object.create(null) as Record<string, T>);
    const sessionData: Record<string, Record<string, unknown>> = {};
    const sessionDataUpdatedAt: Record<string, Record<string, string>> = {};
    for (const row of data) {
      keyed(sessionData, row.session_id)[row.key] = JSON.parse(row.value) as unknown;
      keyed(sessionDataUpdatedAt, row.session_id)[row.key] = toIso(Number(row.updated_at));
    }
    return {
      sessions: sessions.map((session) => ({
        ...this.toDto(session),
        revoked_at: toIso(session.revokedAt),
        revoked_reason: session.revokedReason,
      })),
      sessionData,
      sessionDataUpdatedAt,
    };
  }

  /** The public view of a session: never its token or hash. */
  toDto(session: AuthSession): SessionDto {
    return {
      id: session.id,
      user_id: session.userId,
      anonymous: session.userId === null,
      created_at: toIso(session.createdAt),
      last_activity: toIso(session.lastSeenAt),
      expires_at: toIso(Math.min(session.idleExpiresAt, session.absoluteExpiresAt)),
      idle_expires_at: toIso(session.idleExpiresAt),
      absolute_expires_at: toIso(session.absoluteExpiresAt),
      auth_time: toIso(session.authTime),
      remember_me: session.rememberMe,
      ip_address: session.ip,
      user_agent: session.userAgent,
      device: describeDevice(session.userAgent),
    };
  }

  /** Seconds a cookie should live: only remember-me sessions get a persistent cookie. */
  cookieMaxAgeS(session: AuthSession): number | undefined {
    if (!session.rememberMe) return undefined;
    return Math.max(0, Math.floor((session.absoluteExpiresAt - Date.now()) / 1000));
  }

  private idleMs(rememberMe: boolean): number {
    const s = this.config.session;
    return (rememberMe ? s.rememberIdleS : s.idleTimeoutS) * 1000;
  }

  private absoluteMs(rememberMe: boolean): number {
    const s = this.config.session;
    return (rememberMe ? s.rememberAbsoluteS : s.absoluteTimeoutS) * 1000;
  }

  private newSession(
    userId: string | null,
    rememberMe: boolean,
    meta: ClientMeta,
    now: number,
  ): IssuedSession {
    const absoluteExpiresAt = now + this.absoluteMs(rememberMe);
    const token = generateSessionToken();
    return {
      token,
      session: {
        id: randomUUID(),
        userId,
        createdAt: now,
        lastSeenAt: now,
        idleExpiresAt: Math.min(now + this.idleMs(rememberMe), absoluteExpiresAt),
        absoluteExpiresAt,
        authTime: userId === null ? null : now,
        rememberMe,
        ip: meta.ip,
        userAgent: meta.userAgent,
        tokenHash: hashSessionToken(token),
      },
    };
  }

  private async insert(manager: EntityManager, issued: IssuedSession): Promise<void> {
    await manager.insert(Session, {
      ...issued.session,
      revokedAt: null,
      revokedReason: null,
    });
  }

  private async upgradeAnonymous(
    manager: EntityManager,
    current: AuthSession,
    user: AuthUser,
    rememberMe: boolean,
    meta: ClientMeta,
    now: number,
  ): Promise<IssuedSession | null> {
    const fresh = this.newSession(user.id, rememberMe, meta, now);
    const changed = await this.database.executeIn(
      manager,
      // stitch_pending: its anonymous events are attributed after this commits (see
      // TrackingService.onApplicationBootstrap).
      `UPDATE sessions SET token_hash = ?, user_id = ?, auth_time = ?, remember_me = ?, last_seen_at = ?,
         idle_expires_at = ?, absolute_expires_at = ?, ip = ?, user_agent = ?, stitch_pending = TRUE
       WHERE id = ? AND user_id IS NULL AND revoked_at IS NULL`,
      [
        fresh.session.tokenHash,
        user.id,
        now,
        rememberMe,
        now,
        fresh.session.idleExpiresAt,
        fresh.session.absoluteExpiresAt,
        meta.ip,
        meta.userAgent,
        current.id,
      ],
    );
    if (changed === 0) return null;
    // The session's history is the user's now: its `created` row holds their address and time,
    // and exports and erasure find session events by user.
    await this.database.executeIn(
      manager,
      'UPDATE session_events SET user_id = ? WHERE session_id = ? AND user_id IS NULL',
      [user.id, current.id],
    );
    await this.sessionEvents.record(manager, [
      {
        sessionId: current.id,
        userId: user.id,
        type: 'rotated',
        reason: 'login',
        ip: meta.ip,
        at: now,
      },
    ]);
    return {
      token: fresh.token,
      session: { ...fresh.session, id: current.id, createdAt: current.createdAt },
    };
  }

  private async evictBeyondLimit(
    manager: EntityManager,
    userId: string,
    keepSessionId: string,
    ip: string | null,
    now: number,
  ): Promise<void> {
    const live = await this.database.query<{ id: string }>(
      `SELECT id FROM sessions WHERE user_id = ? AND ${LIVE}
       ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END, last_seen_at DESC, created_at DESC, id DESC`,
      [userId, now, now, keepSessionId],
      manager,
    );
    const excess = live.slice(this.config.session.maxPerUser).map((r) => r.id);
    await this.revokeIn(manager, excess, 'evicted', ip, now);
  }

  private async revokeIn(
    manager: EntityManager,
    sessionIds: string[],
    reason: RevokeReason,
    ip: string | null,
    now: number,
  ): Promise<number> {
    if (sessionIds.length === 0) return 0;
    const placeholders = sessionIds.map(() => '?').join(', ');
    // Live: not revoked and not past a deadline. An expired session is already dead; it is
    // neither counted nor logged as revoked (the cleanup job logs its expiry).
    const live = await this.database.query<{ id: string; user_id: string | null }>(
      `SELECT id, user_id FROM sessions WHERE id IN (${placeholders}) AND revoked_at IS NULL
       AND idle_expires_at > ? AND absolute_expires_at > ?`,
      [...sessionIds, now, now],
      manager,
    );
    if (live.length === 0) return 0;
    // The users first (erasure order, see rotate): a user erased meanwhile gets no new
    // session events naming them; their sessions go with the erasure anyway.
    const erased = await this.database.missingUsers(
      [...new Set(live.flatMap((r) => (r.user_id === null ? [] : [r.user_id])))],
      manager,
    );
    const livePlaceholders = live.map(() => '?').join(', ');
    // `revoked_at IS NULL` again: a parallel revocation of the same session (logout and an
    // admin revoke) must not count or log it twice.
    const revoked = await this.database.query<{ id: string; user_id: string | null }>(
      `UPDATE sessions SET revoked_at = ?, revoked_reason = ?
       WHERE id IN (${livePlaceholders}) AND revoked_at IS NULL RETURNING id, user_id`,
      [now, reason, ...live.map((r) => r.id)],
      manager,
    );
    await this.sessionEvents.record(
      manager,
      revoked
        .filter((r) => r.user_id === null || !erased.has(r.user_id))
        .map((r) => ({
          sessionId: r.id,
          userId: r.user_id,
          type: 'revoked' as const,
          reason,
          ip,
          at: now,
        })),
    );
    return revoked.length;
  }

  /**
   * Records activity; never revives a session revoked or expired meanwhile
   * (a revocation leaves expired sessions alone, so an in-flight touch must
   * not bring one back after it).
   */
  private async touch(session: AuthSession, now: number): Promise<void> {
    const idleExpiresAt = Math.min(
      now + this.idleMs(session.rememberMe),
      session.absoluteExpiresAt,
    );
    await this.database.execute(
      `UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?
       WHERE id = ? AND revoked_at IS NULL AND idle_expires_at > ?`,
      [now, idleExpiresAt, session.id, now],
    );
    session.lastSeenAt = now;
    session.idleExpiresAt = idleExpiresAt;
  }
}
