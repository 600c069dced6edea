import { Logger } from '@nestjs/common';
import type { DatabaseService } from './database.service';
import { RowCache } from './row-cache';

/** A database stand-in counting reads; `inTransaction` plays an open transaction. */
function fakeDatabase(rows: { v: number }[]) {
  const calls = { statement: 0, read: 0 };
  const state = { inTransaction: false };
  const database = {
    get inSqliteTransaction() {
      return state.inTransaction;
    },
    sqliteStatement: () => ({
      all: () => {
        calls.statement++;
        return rows.map((row) => ({ ...row }));
      },
    }),
    read: () => {
      calls.read++;
      return Promise.resolve(rows.map((row) => ({ ...row })));
    },
  } as unknown as DatabaseService;
  return { database, calls, state };
}

describe('RowCache', () => {
  it('reads once per key until the key is invalidated', async () => {
    const { database, calls } = fakeDatabase([{ v: 1 }]);
    const cache = new RowCache<{ v: number }>(database, 'SELECT');
    cache.enable('Test', () => true);
    expect(await cache.rows('a', [])).toEqual([{ v: 1 }]);
    expect(await cache.rows('a', [])).toEqual([{ v: 1 }]);
    expect(calls.statement).toBe(1);
    cache.invalidate('a');
    await cache.rows('a', []);
    expect(calls.statement).toBe(2);
    cache.clear();
    await cache.rows('a', []);
    expect(calls.statement).toBe(3);
  });

  it('keeps nothing read inside an open transaction', async () => {
    const { database, calls, state } = fakeDatabase([{ v: 1 }]);
    const cache = new RowCache<{ v: number }>(database, 'SELECT');
    cache.enable('Test', () => true);
    state.inTransaction = true;
    await cache.rows('a', []);
    await cache.rows('a', []);
    expect(calls.statement).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('drops the oldest entry beyond its bound and skips rows not worth keeping', async () => {
    const { database } = fakeDatabase([{ v: 7 }]);
    const bounded = new RowCache<{ v: number }>(database, 'SELECT', 2);
    bounded.enable('Test', () => true);
    for (const key of ['a', 'b', 'c']) await bounded.rows(key, []);
    expect(bounded.size).toBe(2);
    const picky = new RowCache<{ v: number }>(database, 'SELECT', 10, (rows) => rows[0].v < 5);
    picky.enable('Test', () => true);
    await picky.rows('a', []);
    expect(picky.size).toBe(0);
  });

  it('stays a plain read when watching is unavailable (PostgreSQL) or fails (logged)', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { database, calls } = fakeDatabase([{ v: 1 }]);
    const postgres = new RowCache<{ v: number }>(database, 'SELECT');
    postgres.enable('Test', () => false);
    const failing = new RowCache<{ v: number }>(database, 'SELECT');
    failing.enable('Test', () => {
      throw new Error('no such table: sessions');
    });
    for (const cache of [postgres, failing]) {
      await cache.rows('a', []);
      await cache.rows('a', []);
    }
    expect(calls).toEqual({ statement: 0, read: 4 });
    expect(warn).toHaveBeenCalledWith('Test cache off: no such table: sessions');
    warn.mockRestore();
  });
});
