import type { EventEmitter2 } from '@nestjs/event-emitter';
import type { FastifyRequest } from 'fastify';

/**
 * Audit trail entries are emitted as application events by the module that
 * acts, and written by the compliance module (which owns the audit log).
 * Details must never hold secrets or personal data beyond user ids.
 */
export const AUDIT_EVENT = 'audit.record';

export type AuditActorType = 'user' | 'admin' | 'system';

export interface AuditRecord {
  actorType: AuditActorType;
  actorUserId: string | null;
  action: string;
  targetUserId: string | null;
  details?: Record<string, unknown>;
  sessionId?: string | null;
  requestId?: string | null;
}

/** Who acted, from which session and request: the part of an audit record a request gives. */
export type AuditContext = Pick<
  AuditRecord,
  'actorType' | 'actorUserId' | 'sessionId' | 'requestId'
>;

/** Actor, public session id and request id of a request, for an audit record. */
export function auditContext(request: FastifyRequest): AuditContext {
  const user = request.auth?.user ?? null;
  return {
    actorType: user?.role === 'admin' ? 'admin' : 'user',
    actorUserId: user?.id ?? null,
    sessionId: request.auth?.session.id ?? null,
    requestId: String(request.id),
  };
}

/**
 * Records an admin's read of other people's personal data (accountability,
 * Art. 5(2)): whose data, when one person's (it then shows in that person's
 * export as an admin's read, without naming the admin), and how many items
 * the answer held. A HEAD request sends no body, so nothing was read. Reads
 * of the audit log itself are not recorded: every look at the log would
 * grow it.
 */
export function recordAdminRead(
  emitter: EventEmitter2,
  request: FastifyRequest,
  action: string,
  targetUserId: string | null,
  items: number,
): void {
  if (request.method === 'HEAD') return;
  const record: AuditRecord = {
    ...auditContext(request),
    action,
    targetUserId,
    details: { items },
  };
  emitter.emit(AUDIT_EVENT, record);
}
