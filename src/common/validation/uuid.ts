import { ArgumentMetadata, Injectable, ParseUUIDPipe } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { invalidField } from './invalid-field.js';

/**
 * Ids are UUIDs, which are case-insensitive (RFC 9562): the service makes
 * them in lower case and compares them as stored, so every id it is sent is
 * lowered first. Without that an upper-case id passed validation and then
 * matched nothing (a user that exists answered 404, a filter by them an
 * empty list).
 */
const lowered = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value);

/**
 * Lowers a UUID field of a body or query DTO; put it beside `@IsUUID()`
 * (which stays, so the Swagger plugin documents the field's format).
 */
export const LowercaseId = () => Transform(({ value }: { value: unknown }) => lowered(value));

/** ParseUUIDPipe for a path parameter: 400 (invalidField) unless a UUID; lowered. */
@Injectable()
class ParseIdPipe extends ParseUUIDPipe {
  override async transform(
    value: unknown,
    metadata: ArgumentMetadata,
  ): Promise<string | undefined | null> {
    const id = await super.transform(value, metadata);
    return typeof id === 'string' ? id.toLowerCase() : id;
  }
}

/** The pipe for path parameter `field` holding an id (see ParseIdPipe). */
export const parseUuid = (field: string): ParseUUIDPipe =>
  new ParseIdPipe({ exceptionFactory: () => invalidField(field, 'must be a UUID') });
