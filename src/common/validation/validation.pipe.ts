import {
  ArgumentMetadata,
  BadRequestException,
  ValidationError,
  ValidationPipe,
} from '@nestjs/common';

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
 * class-transformer recurses once per nesting level: a body of a few KB
 * nested a couple of thousand levels deep (`{"username":[[[[...]]]]}`)
 * overflowed the stack, a 500 on every DTO route, public ones included.
 * The overflow is caught here (nothing has run yet) and answered as a 400.
 */
class DepthSafeValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    try {
      return await super.transform(value, metadata);
    } catch (error) {
      if (error instanceof RangeError) {
        throw new BadRequestException('The request is nested too deeply');
      }
      throw error;
    }
  }
}

/**
 * The global pipe: strips nothing silently (unknown properties are errors),
 * converts payloads to DTO instances, and reports every failing field in
 * `details` with a one-line summary in `message`.
 */
export function createValidationPipe(): ValidationPipe {
  return new DepthSafeValidationPipe({
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
