import { BadRequestException, Injectable, OnModuleInit } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { AuditContext } from '../../common/audit.js';
import { AppConfig } from '../../common/config/config.js';
import { assertUserExists, DatabaseService } from '../../common/database/database.service.js';
import { decodeCursor, DEFAULT_PAGE_SIZE, toPage } from '../../common/pagination/pagination.js';
import { toIso } from '../../common/time.js';
import { TrackingPolicy } from '../tracking/tracking-policy.js';
import { AuditService } from './audit.service.js';
import type { ConsentSource } from './entities/consent.entity.js';
import { RecordConsentDto } from './dto/compliance.dto.js';
import { CachedFlags } from '../../common/cache/cached-flags.js';

/** The consent type that TRACKING_CONSENT_MODE and the tracking policy are about. */
const ANALYTICS = 'analytics';

interface ConsentRow {
  id: number;
  consent_type: string;
  granted: number | boolean;
  policy_version: string | null;
  /** Only ever written from ConsentSource values. */
  source: ConsentSource;
  session_id: string | null;
  request_id: string | null;
  created_at: number;
}

const toDto = (r: ConsentRow) => ({
  id: Number(r.id),
  consent_type: r.consent_type,
  granted: Boolean(r.granted),
  policy_version: r.policy_version,
  source: r.source,
  session_id: r.session_id,
  request_id: r.request_id,
  recorded_at: toIso(Number(r.created_at)),
});

/** How long another app instance may keep using a cached consent state. */
const CACHE_MS = 5_000;

/**
 * The consent ledger (append-only; the latest row per type is the current
 * state) and its enforcement in the tracking policy: in `opt-out` mode
 * analytics events are stored unless `analytics` consent was withdrawn, in
 * `opt-in` mode only after it was granted (anonymous visitors have no ledger,
 * so opt-in stores none of their events).
 */
@Injectable()
export class ConsentService implements OnModuleInit {
  private readonly analyticsConsent = new CachedFlags(CACHE_MS, (userId) =>
    this.loadAnalyticsConsent(userId),
  );

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly policy: TrackingPolicy,
    private readonly audit: AuditService,
  ) {}

  onModuleInit(): void {
    this.policy.register(
      (subject) =>
        subject.userId
          ? this.allowsAnalytics(subject.userId)
          : this.config.compliance.consentMode === 'opt-out',
      (userId) => this.analyticsAllowedSince(userId),
    );
  }

  /**
   * When analytics consent was last given after the latest withdrawal (in
   * opt-in mode: after none, the first grant); 0 in opt-out mode while it
   * was never withdrawn. Read when a client batch is stored, not cached.
   */
  private async analyticsAllowedSince(userId: string): Promise<number> {
    const [row] = await this.database.read<{ withdrawal: number | null; since: number | null }>(
      `SELECT w.id AS withdrawal,
         (SELECT MIN(created_at) FROM consents g WHERE g.user_id = ? AND g.consent_type = 'analytics'
            AND g.granted = TRUE AND g.id > COALESCE(w.id, 0)) AS since
       FROM (SELECT MAX(id) AS id FROM consents
             WHERE user_id = ? AND consent_type = 'analytics' AND granted = FALSE) w`,
      [userId, userId],
    );
    if (row?.withdrawal == null && this.config.compliance.consentMode === 'opt-out') return 0;
    return row?.since == null ? Number.MAX_SAFE_INTEGER : Number(row.since);
  }

  async record(userId: string, dto: RecordConsentDto, context: AuditContext) {
    if (!this.config.compliance.consentTypes.includes(dto.consent_type)) {
      throw new BadRequestException({
        message: `Unknown consent_type "${dto.consent_type}"; allowed: ${this.config.compliance.consentTypes.join(', ')}`,
        details: [{ field: 'consent_type', errors: ['is not a configured consent type'] }],
      });
    }
    const now = Date.now();
    const row = await this.database.transaction(async (manager) => {
      await assertUserExists(this.database, userId, manager);
      // RETURNING: reading back "the latest row of this type" could return a parallel
      // request's decision on PostgreSQL (a withdrawal answered as a grant).
      const [inserted] = await this.database.query<ConsentRow>(
        `INSERT INTO consents (user_id, consent_type, granted, policy_version, source, session_id, request_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        [
          userId,
          dto.consent_type,
          dto.granted,
          dto.policy_version ?? null,
          dto.source ?? 'api',
          context.sessionId ?? null,
          context.requestId ?? null,
          now,
        ],
        manager,
      );
      await this.audit.record(
        {
          ...context,
          action: 'consent_change',
          targetUserId: userId,
          details: { consent_type: dto.consent_type, granted: dto.granted },
        },
        manager,
      );
      return inserted;
    });
    this.analyticsConsent.invalidate(userId);
    return toDto(row);
  }

  /**
   * The current state per configured type. A type never answered shows its
   * default: for `analytics`, the one TRACKING_CONSENT_MODE gives; for every
   * other purpose (marketing, personalization, ...) not granted. The mode
   * governs analytics only, and consent to other purposes must be given, not
   * assumed (GDPR Art. 7): a consumer of this answer must not read silence as
   * a yes to marketing.
   */
  async current(userId: string) {
    const rows = await this.database.query<ConsentRow>(
      `SELECT c.* FROM consents c
       WHERE c.user_id = ? AND c.id = (SELECT MAX(id) FROM consents x WHERE x.user_id = c.user_id AND x.consent_type = c.consent_type)`,
      [userId],
    );
    const byType = new Map(rows.map((r) => [r.consent_type, r]));
    const analyticsByDefault = this.config.compliance.consentMode === 'opt-out';
    return {
      mode: this.config.compliance.consentMode,
      consents: this.config.compliance.consentTypes.map((type) => {
        const row = byType.get(type);
        return row
          ? {
              consent_type: type,
              granted: Boolean(row.granted),
              default: false,
              policy_version: row.policy_version,
              source: row.source,
              recorded_at: toIso(Number(row.created_at)),
            }
          : {
              consent_type: type,
              granted: type === ANALYTICS && analyticsByDefault,
              default: true,
              policy_version: null,
              source: null,
              recorded_at: null,
            };
      }),
    };
  }

  async history(userId: string, query: { limit?: number; cursor?: string }) {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const params: unknown[] = [userId];
    let where = 'user_id = ?';
    if (query.cursor) {
      const [id] = decodeCursor(query.cursor, ['id']);
      where += ' AND id < ?';
      params.push(id);
    }
    const rows = await this.database.query<ConsentRow>(
      `SELECT * FROM consents WHERE ${where} ORDER BY id DESC LIMIT ?`,
      [...params, limit + 1],
    );
    return toPage(rows, limit, (r) => [Number(r.id)], toDto);
  }

  /** Whether analytics consent stands; synchronous when cached (the tracking hot path). */
  allowsAnalytics(userId: string): boolean | Promise<boolean> {
    return this.analyticsConsent.get(userId);
  }

  private async loadAnalyticsConsent(userId: string): Promise<boolean> {
    const [row] = await this.database.read<{ granted: number | boolean }>(
      'SELECT granted FROM consents WHERE user_id = ? AND consent_type = ? ORDER BY id DESC LIMIT 1',
      [userId, ANALYTICS],
    );
    return row ? Boolean(row.granted) : this.config.compliance.consentMode === 'opt-out';
  }

  /** The full ledger of a user, oldest first, for exports. */
  async exportUser(userId: string) {
    const rows = await this.database.query<ConsentRow>(
      'SELECT * FROM consents WHERE user_id = ? ORDER BY id',
      [userId],
    );
    return rows.map(toDto);
  }

  async eraseUser(userId: string, manager: EntityManager): Promise<number> {
    this.analyticsConsent.invalidate(userId);
    return this.database.executeIn(manager, 'DELETE FROM consents WHERE user_id = ?', [userId]);
  }
}
