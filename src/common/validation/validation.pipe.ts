import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

export interface ValidationDetail {
  /** Dotted path of the offending field, e.g. `steps.2.type`. */
  field: string;
  errors: string[];
}

function flatten(errors: ValidationError[], parent = ''): ValidationDetail[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, errors: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * The global pipe: strips nothing silently (unknown properties are errors),
 * converts payloads to DTO instances, and reports every failing field in
 * `details` with a one-line summary in `message`.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const details = flatten(errors);
      const summary = details.map((d) => d.errors.join(', ')).join('; ');
      return new BadRequestException({
        message: `Validation failed: ${summary}`,
        details,
      });
    },
  });
}
