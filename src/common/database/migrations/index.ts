import type { MigrationInterface } from 'typeorm';
import { UsersAndSessions1763800000001 } from './0001-users-and-sessions.js';
import { Events1763800000002 } from './0002-events.js';
import { PreferencesAndCompliance1763800000003 } from './0003-preferences-and-compliance.js';
import { EventsAnalyticsIndexes1763800000004 } from './0004-events-analytics-indexes.js';
import { SessionSummaries1763800000005 } from './0005-session-summaries.js';
import { PageViewIndex1763800000006 } from './0006-page-view-index.js';
import { SessionPaths1763800000007 } from './0007-session-paths.js';
import { SessionSummarySpanIndexes1763800000008 } from './0008-session-summary-span-indexes.js';
import { LeanerEventIndexes1763800000009 } from './0009-leaner-event-indexes.js';
import { SessionEventsOfUpgradedSessions1763800000010 } from './0010-session-events-of-upgraded-sessions.js';
import { JobSlots1763800000011 } from './0011-job-slots.js';
import { BigintRowIds1763800000012 } from './0012-bigint-row-ids.js';
import { SessionSummaryUserIndex1763800000013 } from './0013-session-summary-user-index.js';
import { SessionStitchPending1763800000014 } from './0014-session-stitch-pending.js';

/**
 * Every migration, in order. Each is written with the QueryRunner schema API
 * (createTable, createIndex) so one file serves SQLite and PostgreSQL.
 */
export const MIGRATIONS: (new () => MigrationInterface)[] = [
  UsersAndSessions1763800000001,
  Events1763800000002,
  PreferencesAndCompliance1763800000003,
  EventsAnalyticsIndexes1763800000004,
  SessionSummaries1763800000005,
  PageViewIndex1763800000006,
  SessionPaths1763800000007,
  SessionSummarySpanIndexes1763800000008,
  LeanerEventIndexes1763800000009,
  SessionEventsOfUpgradedSessions1763800000010,
  JobSlots1763800000011,
  BigintRowIds1763800000012,
  SessionSummaryUserIndex1763800000013,
  SessionStitchPending1763800000014,
];
