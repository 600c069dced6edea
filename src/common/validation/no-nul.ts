import { Matches, ValidationOptions } from 'class-validator';

/**
 * A string without NUL characters (`\u0000`). PostgreSQL's text type
 * cannot hold them and fails the query (a 500 there, while SQLite answers):
 * free-form strings that reach SQL as parameters must be refused with 400 on
 * both databases alike. (NULs inside JSON values are fine: they are stored
 * escaped.)
 */
export function HasNoNulCharacters(options?: ValidationOptions): PropertyDecorator {
  // eslint-disable-next-line no-control-regex
  return Matches(/^[^\u0000]*$/, {
    message: '$property must not contain NUL characters',
    ...options,
  });
}
