import type { EventType } from './entities/event.entity.js';

/** An event as the writer inserts it (database column values). */
export interface EventRow {
  eventId: string;
  /** Null for server-made events, which need no duplicate check (cheaper to index). */
  dedupeKey: string | null;
  userId: string | null;
  sessionId: string | null;
  type: EventType;
  name: string | null;
  path: string | null;
  /** JSON text. */
  properties: string | null;
  ip: string | null;
  userAgent: string | null;
  occurredAt: number;
  receivedAt: number;
}

/** A row after commit, with its database id. */
export interface StoredEvent extends EventRow {
  id: number;
}

/** Scopes a client's event id to its sender, for duplicate detection. */
export function dedupeKey(
  userId: string | null,
  sessionId: string | null,
  eventId: string,
): string {
  return userId ? `u:${userId}:${eventId}` : `s:${sessionId ?? '-'}:${eventId}`;
}
