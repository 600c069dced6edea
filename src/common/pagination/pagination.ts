import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { invalidField } from '../validation/invalid-field.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** `limit` and `cursor` of every keyset-paginated list. */
export class PaginationQueryDto {
  /** Items per page, 1-1000 (default 50). */
  // Explicit: the Swagger metadata generator reads *.dto.ts files only.
  @ApiPropertyOptional({
    description: 'Items per page, 1-1000 (default 50)',
    type: 'integer',
    minimum: 1,
    maximum: MAX_PAGE_SIZE,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  readonly limit?: number;

  /** Opaque cursor from a previous page's `next_cursor`. */
  @ApiPropertyOptional({ description: "Opaque cursor from a previous page's `next_cursor`" })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  readonly cursor?: string;
}

/** Keyset position: the sort values of the last item of a page. */
export type CursorKey = (string | number)[];

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * What each value of a list's cursor is: `time` (epoch milliseconds, any
 * safe integer), `id` (a row id: a non-negative safe integer; the columns
 * are 64-bit, and ids stay far below 2^53) or `uuid`.
 */
export type CursorShape = readonly ('time' | 'id' | 'uuid')[];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const FITS: Record<CursorShape[number], (value: unknown) => boolean> = {
  time: (v) => Number.isSafeInteger(v),
  id: (v) => Number.isSafeInteger(v) && (v as number) >= 0,
  uuid: (v) => typeof v === 'string' && UUID.test(v),
};

/**
 * Decodes a cursor made by `encodeCursor` for a list whose keys have
 * `shape`; 400 otherwise. Every value is checked against its kind, so a
 * crafted cursor (`[1e400, 1]`, `["a", "b"]`, an id past 2^53,
 * text with a NUL) cannot reach a query where the database would fail on it.
 */
export function decodeCursor(cursor: string, shape: CursorShape): CursorKey {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(key) &&
      key.length === shape.length &&
      key.every((value, i) => FITS[shape[i]](value))
    ) {
      return key as CursorKey;
    }
  } catch {
    // fall through to the error below
  }
  throw invalidField(
    'cursor',
    'must be a cursor returned by this list',
    'cursor is not a cursor returned by this list',
  );
}

/**
 * Cuts one extra fetched row off a page and makes the next cursor from the
 * last kept item. Queries fetch `limit + 1` rows to know whether more exist.
 */
export function toPage<T, R>(
  rows: T[],
  limit: number,
  keyOf: (row: T) => CursorKey,
  map: (row: T) => R,
): { items: R[]; next_cursor: string | null } {
  const hasMore = rows.length > limit;
  const kept = hasMore ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return {
    items: kept.map(map),
    next_cursor: hasMore && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
