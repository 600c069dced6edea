import type { TestApp } from './test-app';

/**
 * Every item of a keyset-paginated list, following `next_cursor` from
 * `path` (which carries its own query, `limit` included) for at most
 * `maxPages` pages, with the size of each page fetched.
 */
export async function collectPages<T>(
  t: Pick<TestApp, 'http'>,
  path: string,
  bearer: string,
  maxPages = 10,
): Promise<{ items: T[]; pageSizes: number[] }> {
  const items: T[] = [];
  const pageSizes: number[] = [];
  let cursor: string | null = null;
  do {
    const url: string = cursor ? `${path}&cursor=${encodeURIComponent(cursor)}` : path;
    const res = await t.http().get(url).set('authorization', bearer).expect(200);
    const body = res.body as { items: T[]; next_cursor: string | null };
    items.push(...body.items);
    pageSizes.push(body.items.length);
    cursor = body.next_cursor;
  } while (cursor !== null && pageSizes.length < maxPages);
  return { items, pageSizes };
}
