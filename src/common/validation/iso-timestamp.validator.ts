import { isISO8601, registerDecorator, ValidationOptions } from 'class-validator';

/** A date without a time (`2026-12-02`, `2026-12`): Date.parse reads it as UTC midnight. */
const DATE_ONLY = /^\d{4}(?:-\d{2}(?:-\d{2})?)?$/;
/** `Z`, `+0100` or `+01:00` at the end of a date-time (Date.parse cannot read `+01`). */
const OFFSET_AT_END = /(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * An ISO 8601 date, or a date-time with a UTC offset, that `Date.parse`
 * reads, e.g. `2026-12-02T19:00:00Z` or `2026-12-02`.
 * - class-validator's strict `IsISO8601` alone also accepts ordinal and week
 *   dates (`2026-336`, `2026-W49`) and the basic format (`20261202T191500Z`),
 *   which `Date.parse` turns into NaN: such values would reach SQL as NaN (a
 *   500, or a batch lost with it).
 * - A date-time without an offset (`2026-12-02T19:00:00`) is read by
 *   `Date.parse` in the server process's time zone, so the same request
 *   meant different instants on differently configured machines. The wire
 *   is UTC; the offset is required instead of guessed.
 * Both get the validation error.
 */
export function IsIsoTimestamp(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isIsoTimestamp',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message:
          '$property must be an ISO 8601 date-time with a UTC offset, such as 2026-12-02T19:00:00Z or 2026-12-02T20:00:00+01:00 (or a date, 2026-12-02, taken as UTC)',
        ...options,
      },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' &&
          isISO8601(value, { strict: true }) &&
          (DATE_ONLY.test(value) || OFFSET_AT_END.test(value)) &&
          Number.isFinite(Date.parse(value)),
      },
    });
  };
}
