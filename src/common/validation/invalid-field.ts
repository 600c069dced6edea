import { BadRequestException } from '@nestjs/common';

/**
 * A 400 about one field of the request (body, query or path), shaped like a
 * validation failure: `details` names the field and, as class-validator's
 * messages do, the error starts with it (`problem`: what follows the name).
 * `message` defaults to that error.
 */
export function invalidField(
  field: string,
  problem: string,
  message = `${field} ${problem}`,
): BadRequestException {
  return new BadRequestException({
    message,
    details: [{ field, errors: [`${field} ${problem}`] }],
  });
}
