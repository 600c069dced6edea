import { BadRequestException, Injectable, OnModuleInit } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { EntityManager } from 'typeorm';
import { AUDIT_EVENT, AuditContext } from '../../common/audit.js';
import { AppConfig } from '../../common/config/config.js';
import { toIso } from '../../common/time.js';
import { assertUserExists, DatabaseService } from '../../common/database/database.service.js';
import { TrackingPolicy } from '../tracking/tracking-policy.js';
import {
  defaultsDocument,
  effectiveDocument,
  GROUPS,
  nest,
  preferenceDefinition,
  PREFERENCE_KEYS,
  PREFERENCES,
} from './preference-schema.js';
import { CachedFlags } from '../../common/cache/cached-flags.js';

/** How long another app instance may keep using a cached privacy setting. */
const ANALYTICS_CACHE_MS = 5_000;

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** 400 unless `key` is a preference (`theme`, `notifications.email`) or a group (`notifications`). */
function assertKnownKey(key: string): void {
  if (preferenceDefinition(key) || GROUPS.includes(key)) return;
  throw new BadRequestException({
    message: `Unknown preference "${key}"`,
    details: [{ field: key, errors: ['is not a preference'] }],
  });
}

/** Stored preference rows as `{key: value}`. */
function valuesOf(rows: { key: string; value: string }[]): Record<string, unknown> {
  return Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
}

/**
 * Typed preferences with defaults. Stored sparsely (only what a user set),
 * one row per leaf; reads merge them over the defaults. Also answers the
 * tracking policy's "may this user's analytics be stored?" from
 * `privacy.allow_analytics`.
 */
@Injectable()
export class PreferencesService implements OnModuleInit {
  private readonly analyticsAllowed = new CachedFlags(ANALYTICS_CACHE_MS, (userId) =>
    this.loadAnalyticsAllowed(userId),
  );

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly policy: TrackingPolicy,
    private readonly emitter: EventEmitter2,
  ) {}

  onModuleInit(): void {
    this.policy.register(
      (subject) => (subject.userId ? this.allowsAnalytics(subject.userId) : true),
      (userId) => this.analyticsAllowedSince(userId),
    );
  }

  /**
   * When `privacy.allow_analytics` was last set (0: never, the default
   * allows). Conservative: the setting keeps no history, so any save of it
   * counts as the moment analytics became allowed. A reset deletes the row:
   * from then on, events of any time in the accepted window are stored.
   */
  private async analyticsAllowedSince(userId: string): Promise<number> {
    const [row] = await this.database.read<{ updated_at: number }>(
      "SELECT updated_at FROM user_preferences WHERE user_id = ? AND key = 'privacy.allow_analytics'",
      [userId],
    );
    return row ? Number(row.updated_at) : 0;
  }

  defaults(): Record<string, unknown> {
    return defaultsDocument(this.config.preferences.supportedLanguages);
  }

  /** What the user set, flat by dotted key. */
  async stored(userId: string): Promise<Record<string, unknown>> {
    return valuesOf(await this.storedRows(userId));
  }

  private storedRows(userId: string) {
    return this.database.query<{ key: string; value: string; updated_at: number }>(
      'SELECT key, value, updated_at FROM user_preferences WHERE user_id = ? ORDER BY key',
      [userId],
    );
  }

  /**
   * For exports: the effective document, the settings as the user set them,
   * and when each of them was last set.
   */
  async exportUser(userId: string) {
    const rows = await this.storedRows(userId);
    const asSet = valuesOf(rows);
    return {
      effective: effectiveDocument(asSet, this.config.preferences.supportedLanguages),
      as_set: asSet,
      updated_at: Object.fromEntries(rows.map((r) => [r.key, toIso(Number(r.updated_at))])),
    };
  }

  /** Defaults with the user's settings on top. */
  async effective(userId: string): Promise<Record<string, unknown>> {
    return effectiveDocument(await this.stored(userId), this.config.preferences.supportedLanguages);
  }

  /**
   * Merges a partial document (`{"theme":"dark","notifications":{"sms":true}}`):
   * every key and value is checked first, and nothing is stored unless all are valid.
   */
  async update(
    userId: string,
    partial: unknown,
    audit: AuditContext,
  ): Promise<Record<string, unknown>> {
    const leaves = this.flatten(partial);
    await this.write(userId, leaves, audit);
    return this.effective(userId);
  }

  /** Sets one key: a leaf (`notifications.email`) or a group with an object value. */
  async setOne(userId: string, key: string, value: unknown, audit: AuditContext) {
    // Checked before nesting: `notifications.email.foo` would otherwise nest as
    // `notifications.email` (the extra segment dropped) and set that instead.
    assertKnownKey(key);
    const document =
      GROUPS.includes(key) || !key.includes('.') ? { [key]: value } : nest({ [key]: value });
    return this.update(userId, document, audit);
  }

  /** Back to the default: one leaf, a whole group, or (no key) everything. */
  async reset(userId: string, key: string | null, audit: AuditContext) {
    if (key !== null) assertKnownKey(key);
    const keys =
      key === null
        ? PREFERENCE_KEYS
        : PREFERENCE_KEYS.filter((k) => k === key || k.startsWith(`${key}.`));
    await this.database.transaction(async (manager) => {
      await assertUserExists(this.database, userId, manager);
      await this.database.executeIn(
        manager,
        `DELETE FROM user_preferences WHERE user_id = ? AND key IN (${keys.map(() => '?').join(', ')})`,
        [userId, ...keys],
      );
    });
    this.analyticsAllowed.invalidate(userId);
    this.emitter.emit(AUDIT_EVENT, {
      ...audit,
      action: 'preference_change',
      targetUserId: userId,
      details: { reset: keys },
    });
    return this.effective(userId);
  }

  /** `privacy.allow_analytics`, cached briefly (invalidated here on change). */
  allowsAnalytics(userId: string): boolean | Promise<boolean> {
    return this.analyticsAllowed.get(userId);
  }

  private async loadAnalyticsAllowed(userId: string): Promise<boolean> {
    const [row] = await this.database.read<{ value: string }>(
      "SELECT value FROM user_preferences WHERE user_id = ? AND key = 'privacy.allow_analytics'",
      [userId],
    );
    return row
      ? (JSON.parse(row.value) as boolean)
      : (PREFERENCES['privacy.allow_analytics'].default as boolean);
  }

  /** Deletes the user's settings inside the erasure transaction; returns how many. */
  async eraseUser(userId: string, manager: EntityManager): Promise<number> {
    this.analyticsAllowed.invalidate(userId);
    return this.database.executeIn(manager, 'DELETE FROM user_preferences WHERE user_id = ?', [
      userId,
    ]);
  }

  private async write(
    userId: string,
    leaves: Record<string, unknown>,
    audit: AuditContext,
  ): Promise<void> {
    const now = Date.now();
    await this.database.transaction(async (manager) => {
      await assertUserExists(this.database, userId, manager);
      // In key order: two requests upserting the same keys in different orders deadlocked
      // on PostgreSQL (a 500).
      for (const [key, value] of Object.entries(leaves).sort(([a], [b]) => compareKeys(a, b))) {
        await this.database.executeIn(
          manager,
          `INSERT INTO user_preferences (user_id, key, value, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
          [userId, key, JSON.stringify(value), now],
        );
      }
    });
    this.analyticsAllowed.invalidate(userId);
    this.emitter.emit(AUDIT_EVENT, {
      ...audit,
      action: 'preference_change',
      targetUserId: userId,
      details: { keys: Object.keys(leaves) },
    });
  }

  /** Validated leaves of a partial document; 400 naming every bad key. */
  private flatten(partial: unknown): Record<string, unknown> {
    if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
      throw new BadRequestException('The body must be a JSON object of preferences');
    }
    const leaves: Record<string, unknown> = {};
    const details: { field: string; errors: string[] }[] = [];
    for (const [key, value] of Object.entries(partial as Record<string, unknown>)) {
      if (GROUPS.includes(key)) {
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          details.push({ field: key, errors: ['must be an object'] });
          continue;
        }
        for (const [leaf, leafValue] of Object.entries(value as Record<string, unknown>)) {
          this.checkLeaf(`${key}.${leaf}`, leafValue, leaves, details);
        }
      } else {
        this.checkLeaf(key, value, leaves, details);
      }
    }
    if (details.length > 0) {
      throw new BadRequestException({
        message: `Invalid preferences: ${details.map((d) => `${d.field} ${d.errors.join(', ')}`).join('; ')}`,
        details,
      });
    }
    if (Object.keys(leaves).length === 0) throw new BadRequestException('No preference to change');
    return leaves;
  }

  private checkLeaf(
    key: string,
    value: unknown,
    leaves: Record<string, unknown>,
    details: { field: string; errors: string[] }[],
  ): void {
    const definition = preferenceDefinition(key);
    if (!definition) {
      details.push({ field: key, errors: ['is not a preference'] });
      return;
    }
    const problem = definition.check(value, this.config.preferences.supportedLanguages);
    if (problem) details.push({ field: key, errors: [problem] });
    else leaves[key] = value;
  }
}
