import { TableColumnOptions, TableForeignKey } from 'typeorm';

/** An auto-incrementing integer primary key `id` (64-bit on both databases since migration 0012). */
export const generatedId: TableColumnOptions = {
  name: 'id',
  type: 'integer',
  isPrimary: true,
  isGenerated: true,
  generationStrategy: 'increment',
};

/** `column` references `table(id)`; rows go with the row they point to. */
export function cascadingForeignKey(name: string, column: string, table: string): TableForeignKey {
  return new TableForeignKey({
    name,
    columnNames: [column],
    referencedTableName: table,
    referencedColumnNames: ['id'],
    onDelete: 'CASCADE',
  });
}
