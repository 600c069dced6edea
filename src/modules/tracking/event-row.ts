import type { EventType } from './event-types.js';

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

/** The events table's columns the writer fills, in `eventValues` order. */
export const EVENT_COLUMNS =
  'event_id, dedupe_key, user_id, session_id, type, name, path, properties, ip, user_agent, occurred_at, received_at';

/** One row's placeholders for EVENT_COLUMNS. */
export const EVENT_PLACEHOLDERS = `(${Array<string>(12).fill('?').join(', ')})`;

/**
 * A resent event (same dedupe key) is skipped. The predicate names the
 * partial unique index (migration 0009): without it neither database takes
 * that index as the conflict target.
 */
export const SKIP_RESENT = 'ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING';

/** Column values of a row, in EVENT_COLUMNS order. */
export function eventValues(r: EventRow): unknown[] {
  return [
    r.eventId,
    r.dedupeKey,
    r.userId,
    r.sessionId,
    r.type,
    r.name,
    r.path,
    r.properties,
    r.ip,
    r.userAgent,
    r.occurredAt,
    r.receivedAt,
  ];
}

/** The distinct user ids of the jobs' rows. */
export function usersOf(jobRows: readonly EventRow[][]): string[] {
  const ids = new Set<string>();
  for (const rows of jobRows) for (const row of rows) if (row.userId !== null) ids.add(row.userId);
  return [...ids];
}

/** The distinct sessions of the jobs' anonymous rows (no user). */
export function anonymousSessionsOf(jobRows: readonly EventRow[][]): string[] {
  const ids = new Set<string>();
  for (const rows of jobRows) {
    for (const row of rows) {
      if (row.userId === null && row.sessionId !== null) ids.add(row.sessionId);
    }
  }
  return [...ids];
}

/**
 * Who a batch must not write about any more: users that no longer exist,
 * and the sessions of anonymous rows that no longer exist (an erasure
 * deleted an upgraded session whose anonymous events another instance
 * still held; a cleanup deleted a session that ended).
 */
export class GoneOwners {
  constructor(
    private readonly users: ReadonlySet<string>,
    private readonly sessions: ReadonlySet<string>,
  ) {}

  get none(): boolean {
    return this.users.size === 0 && this.sessions.size === 0;
  }

  owns(row: EventRow): boolean {
    if (row.userId !== null) return this.users.has(row.userId);
    return row.sessionId !== null && this.sessions.has(row.sessionId);
  }
}
