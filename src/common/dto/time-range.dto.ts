import { IsISO8601, IsOptional } from 'class-validator';

/** A half-open time range `[from, to)` given as ISO-8601 strings. */
export class TimeRangeDto {
  /** Inclusive start (ISO-8601). */
  @IsOptional()
  @IsISO8601({ strict: true })
  readonly from?: string;

  /** Exclusive end (ISO-8601). */
  @IsOptional()
  @IsISO8601({ strict: true })
  readonly to?: string;
}
