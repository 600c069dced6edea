import { Column, ColumnOptions, DataSource, PrimaryGeneratedColumn } from 'typeorm';

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

/** Per entity class, the properties declared with RowIdColumn or RowIdRefColumn. */
const rowIdProperties = new WeakMap<object, Set<string | symbol>>();

function markRowId(target: object, property: string | symbol): void {
  const properties = rowIdProperties.get(target.constructor) ?? new Set();
  properties.add(property);
  rowIdProperties.set(target.constructor, properties);
}

/**
 * A generated row id, 64-bit: `bigint` on PostgreSQL (migration 0012: a
 * 32-bit `integer` runs out, and skipped duplicates use up ids too). On
 * SQLite the column is the rowid, 64-bit already but declared `integer`, as
 * a rowid must be: `useSqliteRowIds` says so in the metadata there.
 */
export function RowIdColumn(): PropertyDecorator {
  return (target, property) => {
    PrimaryGeneratedColumn({ type: 'bigint' })(target, property);
    markRowId(target, property);
  };
}

/** A column holding another row's RowIdColumn id: 64-bit like it (`integer` on SQLite). */
export function RowIdRefColumn(options: ColumnOptions = {}): PropertyDecorator {
  return (target, property) => {
    Column({ type: 'bigint', ...options })(target, property);
    markRowId(target, property);
  };
}

/**
 * On SQLite, declares the RowIdColumn and RowIdRefColumn columns `integer`
 * in the entity metadata, as the migrations made them there (a SQLite
 * integer is 64-bit), so that TypeORM's schema comparison (the schema test)
 * sees the tables as they are; it would otherwise rebuild each table to
 * change their type.
 */
export function useSqliteRowIds(dataSource: DataSource): void {
  for (const metadata of dataSource.entityMetadatas) {
    const properties = rowIdProperties.get(metadata.target as object);
    for (const column of metadata.columns) {
      if (properties?.has(column.propertyName)) column.type = 'integer';
    }
  }
}
