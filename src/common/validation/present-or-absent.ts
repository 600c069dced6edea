import { ValidateIf, ValidationOptions } from 'class-validator';

/**
 * An optional body field that, when sent, must pass its validators: unlike
 * `@IsOptional()`, `null` is not "absent" (it would reach the service as a
 * value, e.g. into a NOT NULL column: 500). Leave the field out to skip it.
 */
export function IsPresentOrAbsent(options?: ValidationOptions): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined, options);
}
