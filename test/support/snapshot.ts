import { EventWriter } from '../../src/modules/tracking/event-writer';
import type { TestApp } from './test-app';

/** Session columns a successful session check may refresh (activity, idle deadline). */
const REFRESHED_SESSION_COLUMNS = ['last_seen_at', 'idle_expires_at'];

/**
 * Every table's rows as one string, except the session columns a successful
 * session check may refresh: a refused request must change nothing else, not
 * even an event (queued events are written first).
 */
export async function databaseSnapshot(t: TestApp): Promise<string> {
  await t.app.get(EventWriter).drain();
  const tables = t.dataSource.entityMetadatas.map((m) => m.tableName).sort();
  const dump: Record<string, unknown[]> = {};
  for (const table of tables) {
    const rows = await t.dataSource.query<Record<string, unknown>[]>(`SELECT * FROM "${table}"`);
    dump[table] = rows
      .map((row) =>
        JSON.stringify(row, (column, value: unknown) =>
          table === 'sessions' && REFRESHED_SESSION_COLUMNS.includes(column) ? undefined : value,
        ),
      )
      .sort();
  }
  return JSON.stringify(dump);
}
