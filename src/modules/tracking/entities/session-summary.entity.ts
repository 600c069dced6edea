import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { EpochMsColumn, RowIdRefColumn } from '../../../common/database/columns.js';

/**
 * Per-session rollup of the events table (see SessionSummaries): what the
 * session-level analytics need, one row per session instead of one per
 * event. Derived data: it can always be rebuilt from `events`.
 */
@Entity('session_summaries')
// Both columns in each: the straddling-session lookups stay in the index (migration 0008).
@Index('ix_session_summaries_first_last', ['firstAt', 'lastAt'])
@Index('ix_session_summaries_last_first', ['lastAt', 'firstAt'])
// With first_at: the active-user series reads users' sessions in order from it (migration 0013).
@Index('ix_session_summaries_user_first', ['userId', 'firstAt'])
export class SessionSummary {
  /** Public session id, as in `events.session_id`. */
  @PrimaryColumn({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  /** The user the session's events belong to (after identity stitching); null while anonymous. */
  @Column({ name: 'user_id', type: 'varchar', length: 36, nullable: true })
  userId!: string | null;

  @EpochMsColumn({ name: 'first_at' })
  firstAt!: number;

  @EpochMsColumn({ name: 'last_at' })
  lastAt!: number;

  /** Events per type (the closed set EVENT_TYPES). */
  @Column({ type: 'integer' })
  logins!: number;

  @Column({ type: 'integer' })
  logouts!: number;

  @Column({ name: 'page_views', type: 'integer' })
  pageViews!: number;

  @Column({ type: 'integer' })
  actions!: number;

  @Column({ name: 'api_requests', type: 'integer' })
  apiRequests!: number;

  @Column({ type: 'integer' })
  errors!: number;

  @Column({ type: 'integer' })
  customs!: number;

  /** The first page view in (occurred_at, id) order: the entry page. */
  @EpochMsColumn({ name: 'entry_at', nullable: true })
  entryAt!: number | null;

  @RowIdRefColumn({ name: 'entry_id', nullable: true })
  entryId!: number | null;

  @Column({ name: 'entry_path', type: 'varchar', length: 2048, nullable: true })
  entryPath!: string | null;

  /** The last page view: the exit page. */
  @EpochMsColumn({ name: 'exit_at', nullable: true })
  exitAt!: number | null;

  @RowIdRefColumn({ name: 'exit_id', nullable: true })
  exitId!: number | null;

  @Column({ name: 'exit_path', type: 'varchar', length: 2048, nullable: true })
  exitPath!: string | null;

  /**
   * The session's path: JSON array of the path items of its events other
   * than api_request, consecutive duplicates collapsed; null without any.
   */
  @Column({ type: 'text', nullable: true })
  items!: string | null;

  /** (occurred_at, id) of the last of those events: where the writer appends. */
  @EpochMsColumn({ name: 'items_at', nullable: true })
  itemsAt!: number | null;

  @RowIdRefColumn({ name: 'items_id', nullable: true })
  itemsId!: number | null;
}
