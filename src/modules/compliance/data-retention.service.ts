import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { AUDIT_EVENT, AuditContext, AuditRecord } from '../../common/audit.js';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { WalCheckpointer } from '../../common/database/wal-checkpointer.js';
import { toIso } from '../../common/time.js';
import { nextTurn } from '../../common/scheduling/event-loop.js';
import { SessionEventsService } from '../session/session-events.service.js';
import { SessionRetentionService } from '../session/session-retention.service.js';
import { TrackingService } from '../tracking/tracking.service.js';
import { AuditService } from './audit.service.js';

const DAY_MS = 86_400_000;

export interface RetentionCounts {
  events: number;
  session_events: number;
  audit_log: number;
  ips_anonymised: number;
}

/**
 * Applies the retention policies in batches of RETENTION_BATCH rows (each its
 * own short transaction, so no long write lock), logs every run and keeps a
 * record of it. One instance at a time (job lock).
 */
@Injectable()
export class DataRetentionService {
  private readonly logger = new Logger(DataRetentionService.name);

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
    private readonly tracking: TrackingService,
    private readonly sessionEvents: SessionEventsService,
    private readonly sessionRetention: SessionRetentionService,
    private readonly audit: AuditService,
    private readonly emitter: EventEmitter2,
    private readonly checkpointer: WalCheckpointer,
  ) {}

  policies() {
    const r = this.config.compliance.retention;
    return {
      events_days: r.eventsDays,
      session_events_days: r.sessionEventsDays,
      audit_days: r.auditDays,
      ip_days: r.ipDays,
      batch: r.batch,
      cron: r.cron,
    };
  }

  /**
   * Runs every policy now; null when another run holds the lock. `actor`:
   * who asked for a manual run (the audit entry names them); scheduled runs
   * are the system's.
   */
  async run(
    trigger: 'schedule' | 'manual',
    now = Date.now(),
    actor?: AuditContext,
  ): Promise<RetentionCounts | null> {
    return this.database
      .withJobLock('retention', async () => {
        const r = this.config.compliance.retention;
        const counts: RetentionCounts = {
          events: 0,
          session_events: 0,
          audit_log: 0,
          ips_anonymised: 0,
        };
        const startedAt = Date.now();
        this.logger.log(`Retention run started (${trigger})`);
        let error: string | null = null;
        try {
          const drain = async (days: number, step: (cutoff: number) => Promise<number>) => {
            if (days === 0) return 0;
            let total = 0;
            for (;;) {
              const n = await step(now - days * DAY_MS);
              total += n;
              if (n < r.batch) return total;
              // SQLite: the WAL copied back before the next batch, so that it starts over
              // instead of growing by every batch (see WalCheckpointer.catchUp).
              await this.checkpointer.catchUp();
              await nextTurn();
            }
          };
          counts.events = await drain(r.eventsDays, (c) => this.tracking.deleteBefore(c, r.batch));
          counts.session_events = await drain(r.sessionEventsDays, (c) =>
            this.sessionEvents.deleteBefore(c, r.batch),
          );
          counts.audit_log = await drain(r.auditDays, (c) => this.audit.deleteBefore(c, r.batch));
          counts.ips_anonymised = await drain(r.ipDays, (c) =>
            this.sessionRetention.anonymizeIpsBefore(c, r.batch),
          );
        } catch (failure) {
          error = (failure as Error).message;
          this.logger.error(`Retention run failed: ${error}`);
        }
        const finishedAt = Date.now();
        await this.database.execute(
          'INSERT INTO retention_runs (trigger, counts, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?)',
          [trigger, JSON.stringify(counts), error, startedAt, finishedAt],
        );
        this.emitter.emit(AUDIT_EVENT, {
          actorType: 'system',
          actorUserId: null,
          ...actor,
          action: 'retention_run',
          targetUserId: null,
          details: { trigger, ...counts, error },
        } satisfies AuditRecord);
        this.logger.log({ ...counts }, `Retention run finished in ${finishedAt - startedAt} ms`);
        if (error) throw new Error(error);
        return counts;
      })
      .then((result) => result ?? null);
  }

  async lastRuns(limit = 20) {
    const rows = await this.database.query<{
      id: number;
      trigger: string;
      counts: string;
      error: string | null;
      started_at: number;
      finished_at: number;
    }>('SELECT * FROM retention_runs ORDER BY id DESC LIMIT ?', [limit]);
    return rows.map((r) => ({
      id: Number(r.id),
      trigger: r.trigger,
      counts: JSON.parse(r.counts) as RetentionCounts,
      error: r.error,
      started_at: toIso(Number(r.started_at)),
      finished_at: toIso(Number(r.finished_at)),
    }));
  }
}
