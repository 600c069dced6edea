import { isISO8601, registerDecorator, ValidationOptions } from 'class-validator';

/**
 * An ISO 8601 date or date-time that `Date.parse` reads, e.g.
 * `2026-12-02T19:00:00Z` or `2026-12-02`. class-validator's strict
 * `IsISO8601` alone also accepts ordinal and week dates (`2026-336`,
 * `2026-W49`) and the basic format (`20261202T191500Z`), which `Date.parse`
 * turns into NaN: such values would reach SQL as NaN (a 500, or a batch
 * lost with it). They get the validation error instead.
 */
export function IsIsoTimestamp(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isIsoTimestamp',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message:
          '$property must be an ISO 8601 date-time such as 2026-12-02T19:00:00Z (or a date, 2026-12-02)',
        ...options,
      },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' &&
          isISO8601(value, { strict: true }) &&
          Number.isFinite(Date.parse(value)),
      },
    });
  };
}
