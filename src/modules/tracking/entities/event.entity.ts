import { Column, Entity, Index } from 'typeorm';
import { EpochMsColumn, RowIdColumn } from '../../../common/database/columns.js';

import { EVENT_TYPES, type EventType } from '../event-types.js';

export { EVENT_TYPES, type EventType };

/** Types the server records itself; clients may not submit them. */
export const SERVER_EVENT_TYPES: readonly EventType[] = ['login', 'logout', 'api_request'];

/** Page views by path and time, with their actors (migration 0006): popular pages read it alone. */
export const PAGE_VIEW_INDEX = 'ix_events_page_views';

/**
 * One user activity. No foreign keys: events are written in large batches
 * and outlive the sessions they mention; erasure deletes them explicitly.
 */
@Entity('events')
@Index('ix_events_user_id_occurred_at', ['userId', 'occurredAt'])
@Index('ix_events_session_id_occurred_at', ['sessionId', 'occurredAt'])
@Index('ix_events_type_occurred_at', ['type', 'occurredAt'])
@Index('ix_events_occurred_at_actor', ['occurredAt', 'type', 'userId', 'sessionId'])
@Index(PAGE_VIEW_INDEX, ['path', 'occurredAt', 'userId', 'sessionId'], {
  where: "type = 'page_view'",
})
/** Actions by name and time, with their actors (migration 0009). */
@Index('ix_events_actions', ['name', 'occurredAt', 'userId', 'sessionId'], {
  where: "type = 'action'",
})
export class Event {
  @RowIdColumn()
  id!: number;

  /** The client's idempotency key, or a server-made UUID. */
  @Column({ name: 'event_id', type: 'varchar', length: 64 })
  eventId!: string;

  /**
   * `event_id` scoped to who sent it (`u:<user>:` or `s:<session>:`): a
   * resent event is a duplicate, not a second row. Identity stitching
   * rewrites an anonymous session's keys to its user's (TrackingService.stitch).
   * Null for events the server makes itself, which the unique index leaves
   * out (migration 0009).
   */
  @Index('uq_events_dedupe_key', { unique: true, where: 'dedupe_key IS NOT NULL' })
  @Column({ name: 'dedupe_key', type: 'varchar', length: 112, nullable: true })
  dedupeKey!: string | null;

  /** Null while the session is anonymous. */
  @Column({ name: 'user_id', type: 'varchar', length: 36, nullable: true })
  userId!: string | null;

  /** Public session id. */
  @Column({ name: 'session_id', type: 'varchar', length: 36, nullable: true })
  sessionId!: string | null;

  @Column({ type: 'varchar', length: 16 })
  type!: EventType;

  /** Action name, custom event name, or `METHOD /route/:pattern` for api_request. */
  @Column({ type: 'varchar', length: 128, nullable: true })
  name!: string | null;

  /** Normalised page path (no query string, no trailing slash) for page views. */
  @Column({ type: 'varchar', length: 2048, nullable: true })
  path!: string | null;

  /** JSON text. */
  @Column({ type: 'text', nullable: true })
  properties!: string | null;

  /** Anonymised unless IP_ANONYMIZATION=false. */
  @Column({ type: 'varchar', length: 45, nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @EpochMsColumn({ name: 'occurred_at' })
  occurredAt!: number;

  @EpochMsColumn({ name: 'received_at' })
  receivedAt!: number;
}
