export class LivenessDto {
  /** Always `ok` when the process answers. */
  readonly status!: 'ok';
  /** Seconds since the process started. */
  readonly uptime_s!: number;
}

export class ReadinessChecksDto {
  readonly database!: 'up';
}

export class TrackingHealthDto {
  /** Events waiting for the next group commit. */
  readonly queued!: number;
  /** Automatic events dropped because the queue was full (since start). */
  readonly dropped_events!: number;
  /** Automatic events lost because their batch failed to commit (since start). */
  readonly failed_events!: number;
  /**
   * Session summaries recomputed from their events because a batch brought
   * events from before the session's last one (since start). In-order
   * tracking keeps it at 0; a steady rise means clients send old timestamps.
   */
  readonly rebuilt_summaries!: number;
  /**
   * Where events are committed: `thread` (SQLite file: the writer's own
   * thread), `main` (SQLite in memory, or the thread died: see the logs),
   * `pool` (PostgreSQL).
   */
  readonly writer!: 'thread' | 'main' | 'pool';
}

export class ReadinessDto {
  readonly status!: 'ok';
  readonly checks!: ReadinessChecksDto;
  readonly tracking!: TrackingHealthDto;
}
