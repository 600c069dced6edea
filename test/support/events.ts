import { randomUUID } from 'node:crypto';
import { SessionSummaries } from '../../src/modules/tracking/session-summaries.service';
import type { TestApp } from './test-app';

export interface FixtureEvent {
  user?: string | null;
  /** Null: an event without a session (the service writes none; analytics must count them). */
  session: string | null;
  type: string;
  name?: string | null;
  path?: string | null;
  /** ISO time or epoch ms. */
  at: string | number;
}

/**
 * Inserts events directly, in the order given (ids increase in that order,
 * which is the tie-break for equal timestamps), then rebuilds their
 * sessions' summaries, as any writer outside the event writer must. For
 * hand-computed fixtures.
 */
export async function insertEvents(t: TestApp, events: FixtureEvent[]): Promise<void> {
  for (const e of events) {
    const at = typeof e.at === 'number' ? e.at : Date.parse(e.at);
    const eventId = randomUUID();
    const values = [
      eventId,
      `x:${eventId}`,
      e.user ?? null,
      e.session,
      e.type,
      e.name ?? null,
      e.path ?? null,
      at,
      at,
    ];
    const placeholders = values.map((_, n) =>
      t.dataSource.options.type === 'postgres' ? `$${n + 1}` : '?',
    );
    await t.dataSource.query(
      `INSERT INTO events (event_id, dedupe_key, user_id, session_id, type, name, path, occurred_at, received_at)
       VALUES (${placeholders.join(', ')})`,
      values,
    );
  }
  await t.app
    .get(SessionSummaries)
    .rebuild(events.flatMap((e) => (e.session === null ? [] : [e.session])));
}

/**
 * Deterministic UUID-shaped ids for fixtures: `uid('u', 1)`. The last group
 * is the whole prefix in hex, then `n`: distinct prefixes give distinct ids
 * (`uid('cs', 1)` and `uid('cz', 1)` once were the same id).
 */
export const uid = (prefix: string, n: number) => {
  const tag = Buffer.from(prefix).toString('hex');
  const digits = String(n).padStart(12 - tag.length, '0');
  if (tag.length + digits.length !== 12) throw new Error(`uid('${prefix}', ${n}) does not fit`);
  return `00000000-0000-4000-8000-${tag}${digits}`;
};
