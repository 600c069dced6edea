import { Column, ColumnOptions } from 'typeorm';

/** bigint columns as numbers (PostgreSQL's driver returns int8 as text without it). */
export const toNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

/**
 * A time as UTC epoch milliseconds (`bigint`): the same arithmetic for
 * durations and buckets on SQLite and PostgreSQL (see DESIGN.md).
 */
export function EpochMsColumn(options: ColumnOptions = {}): PropertyDecorator {
  return Column({ type: 'bigint', transformer: toNumber, ...options });
}
