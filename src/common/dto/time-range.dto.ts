import { IsOptional } from 'class-validator';
import { IsIsoTimestamp } from '../validation/iso-timestamp.validator.js';
import { invalidField } from '../validation/invalid-field.js';

/** A half-open time range `[from, to)` given as ISO-8601 strings. */
export class TimeRangeDto {
  /** Inclusive start (ISO-8601). */
  @IsOptional()
  @IsIsoTimestamp()
  readonly from?: string;

  /** Exclusive end (ISO-8601). */
  @IsOptional()
  @IsIsoTimestamp()
  readonly to?: string;
}

/** 400 unless `from` is before `to`: an empty or reversed range is a mistake, not an empty answer. */
export function assertRangeOrder(from: number, to: number): void {
  if (from >= to) throw invalidField('from', 'must be before to');
}
