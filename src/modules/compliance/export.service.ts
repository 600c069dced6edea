import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { Readable } from 'node:stream';
import { AUDIT_EVENT, AuditContext } from '../../common/audit.js';
import { AppConfig } from '../../common/config/config.js';
import { toIso } from '../../common/time.js';
import { PreferencesService } from '../preferences/preferences.service.js';
import { SessionEventsService } from '../session/session-events.service.js';
import { SessionService } from '../session/session.service.js';
import { TrackingService } from '../tracking/tracking.service.js';
import { toUserDto, UsersService } from '../users/users.service.js';
import { AuditService } from './audit.service.js';
import { ConsentService } from './consent.service.js';
import { processingRecord } from './processing.js';

/**
 * The export document's version. Fields and sections added later (such as
 * `session_data_updated_at`, or `updated_at` in `user` and `preferences`)
 * keep it; a field renamed, removed or changed in meaning raises it.
 */
export const EXPORT_SCHEMA_VERSION = 1;

/**
 * Right of access and portability: one JSON document of everything held
 * about a user, streamed (activities page by page), so a user with hundreds
 * of thousands of events exports in bounded memory. Never tokens or hashes.
 */
@Injectable()
export class ExportService {
  constructor(
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly sessionEvents: SessionEventsService,
    private readonly tracking: TrackingService,
    private readonly preferences: PreferencesService,
    private readonly consents: ConsentService,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
    private readonly emitter: EventEmitter2,
  ) {}

  async export(userId: string, context: AuditContext): Promise<Readable> {
    const user = await this.users.findExisting(userId);
    this.emitter.emit(AUDIT_EVENT, { ...context, action: 'export', targetUserId: userId });
    const { sessions, sessionData, sessionDataUpdatedAt } = await this.sessions.exportUser(userId);
    const head = {
      schema_version: EXPORT_SCHEMA_VERSION,
      export_date: new Date().toISOString(),
      user: { ...toUserDto(user), updated_at: toIso(user.updatedAt) },
      sessions,
      session_data: sessionData,
      session_data_updated_at: sessionDataUpdatedAt,
      session_events: await this.sessionEvents.exportUser(userId),
    };
    const tracking = this.tracking;
    const tail = async () => ({
      preferences: await this.preferences.exportUser(userId),
      consents: await this.consents.exportUser(userId),
      audit: await this.audit.exportUser(userId),
      processing: processingRecord(this.config),
    });
    async function* document(): AsyncGenerator<string> {
      const opening = JSON.stringify(head);
      yield `${opening.slice(0, -1)},"activities":[`;
      let first = true;
      let chunk: string[] = [];
      for await (const event of tracking.exportUser(userId)) {
        chunk.push(JSON.stringify(event));
        if (chunk.length === 500) {
          yield (first ? '' : ',') + chunk.join(',');
          first = false;
          chunk = [];
        }
      }
      if (chunk.length > 0) yield (first ? '' : ',') + chunk.join(',');
      const closing = JSON.stringify(await tail());
      yield `],${closing.slice(1)}`;
    }
    return Readable.from(document());
  }
}
