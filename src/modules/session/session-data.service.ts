import {
  Injectable,
  NotFoundException,
  OnApplicationBootstrap,
  PayloadTooLargeException,
  UnauthorizedException,
} from '@nestjs/common';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { RowCache } from '../../common/database/row-cache.js';
import { UNAUTHORIZED_MESSAGE } from './session.service.js';

/**
 * Per-session state, one row per key. Writers of different keys never touch
 * the same row; the size limits are checked under a lock on the session row,
 * so parallel writers cannot together exceed SESSION_DATA_MAX_BYTES.
 */
interface DataRow {
  key: string;
  value: string;
}

/** Sessions whose data is larger than this (as JSON) are read every time, to bound memory. */
const CACHED_DATA_MAX_CHARS = 2048;

@Injectable()
export class SessionDataService implements OnApplicationBootstrap {
  /** All data of a session, by session id (SQLite; see RowCache for why it is exact). */
  private readonly allRows: RowCache<DataRow>;

  constructor(
    private readonly database: DatabaseService,
    private readonly config: AppConfig,
  ) {
    this.allRows = new RowCache<DataRow>(
      database,
      'SELECT key, value FROM session_data WHERE session_id = ? ORDER BY key',
      10_000,
      (rows) =>
        rows.reduce((n, row) => n + row.key.length + row.value.length, 0) <= CACHED_DATA_MAX_CHARS,
    );
  }

  onApplicationBootstrap(): void {
    this.allRows.enable('Session data', () =>
      this.database.watchWrites('session_data', 'session_id', (sessionId) =>
        this.allRows.invalidate(sessionId),
      ),
    );
  }

  async getAll(sessionId: string): Promise<Record<string, unknown>> {
    const rows = await this.allRows.rows(sessionId, [sessionId]);
    return Object.fromEntries(rows.map((row) => [row.key, JSON.parse(row.value) as unknown]));
  }

  async get(sessionId: string, key: string): Promise<unknown> {
    const [row] = await this.database.query<{ value: string }>(
      'SELECT value FROM session_data WHERE session_id = ? AND key = ?',
      [sessionId, key],
    );
    if (!row) throw new NotFoundException(`No session data under "${key}"`);
    return JSON.parse(row.value) as unknown;
  }

  /**
   * Stores `value` under `key`. SESSION_DATA_VALUE_MAX_BYTES bounds the value
   * as JSON; SESSION_DATA_MAX_BYTES bounds the session's keys and values
   * together (a row's `size`): counting values alone, many long keys with
   * tiny values held a hundred times the limit. Rows written before keys
   * were counted keep their value-only size until rewritten.
   */
  async put(sessionId: string, key: string, value: unknown): Promise<void> {
    const json = JSON.stringify(value);
    const valueSize = Buffer.byteLength(json, 'utf8');
    const { dataValueMaxBytes, dataMaxBytes } = this.config.session;
    if (valueSize > dataValueMaxBytes) {
      throw new PayloadTooLargeException(
        `The value is ${valueSize} bytes as JSON; at most ${dataValueMaxBytes} are allowed per key`,
      );
    }
    const size = Buffer.byteLength(key, 'utf8') + valueSize;
    await this.database.transaction(async (manager) => {
      await this.database.lockRow(manager, 'sessions', sessionId);
      // A logout that committed while this request was in flight wins.
      const [session] = await this.database.query<{ revoked_at: number | null }>(
        'SELECT revoked_at FROM sessions WHERE id = ?',
        [sessionId],
        manager,
      );
      if (!session || session.revoked_at !== null) {
        throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
      }
      const [others] = await this.database.query<{ total: number | string }>(
        'SELECT COALESCE(SUM(size), 0) AS total FROM session_data WHERE session_id = ? AND key <> ?',
        [sessionId, key],
        manager,
      );
      const total = Number(others?.total ?? 0) + size;
      if (total > dataMaxBytes) {
        throw new PayloadTooLargeException(
          `Session data would be ${total} bytes (keys and JSON values); at most ${dataMaxBytes} are allowed per session`,
        );
      }
      await this.database.executeIn(
        manager,
        `INSERT INTO session_data (session_id, key, value, size, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (session_id, key)
         DO UPDATE SET value = excluded.value, size = excluded.size, updated_at = excluded.updated_at`,
        [sessionId, key, json, size, Date.now()],
      );
    });
  }

  async delete(sessionId: string, key: string): Promise<void> {
    const deleted = await this.database.execute(
      'DELETE FROM session_data WHERE session_id = ? AND key = ?',
      [sessionId, key],
    );
    if (deleted === 0) throw new NotFoundException(`No session data under "${key}"`);
  }
}
