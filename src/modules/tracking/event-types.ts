/**
 * The event types, in their own module (no ORM imports) so that the event
 * writer's worker thread can load what it needs without TypeORM.
 */
export const EVENT_TYPES = [
  'login',
  'logout',
  'page_view',
  'action',
  'api_request',
  'error',
  'custom',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
