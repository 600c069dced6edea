import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { TimeRangeDto } from '../../../common/dto/time-range.dto.js';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  IsObject,
  ValidateNested,
} from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import { IsPresentOrAbsent } from '../../../common/validation/present-or-absent.js';
import { HasNoNulCharacters } from '../../../common/validation/no-nul.js';
import { EVENT_TYPES, type EventType } from '../../tracking/entities/event.entity.js';
import { LowercaseId } from '../../../common/validation/uuid.js';

/** Query-string booleans: only `true` and `false` are accepted. */
const toBoolean = ({ value }: { value: unknown }) =>
  value === 'true' ? true : value === 'false' ? false : value;

export class RangeQueryDto extends TimeRangeDto {
  /** IANA time zone for day/week/month buckets (default UTC). */
  @IsOptional()
  @IsString()
  @MaxLength(64)
  readonly tz?: string;

  /** Count automatic `api_request` events (default true for counts, false for journeys and patterns). */
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  readonly include_api?: boolean;
}

export class ActiveUsersQueryDto {
  /** Window length in hours, 1-8760 (default 24). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @ApiPropertyOptional({ type: 'integer' })
  @Min(1)
  @Max(8760)
  readonly hours?: number;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  readonly include_api?: boolean;
}

export class SeriesQueryDto extends RangeQueryDto {
  @IsOptional()
  @IsIn(['day'])
  @ApiProperty({ enum: ['day'], required: false })
  readonly interval?: 'day';
}

export class LimitedRangeQueryDto extends RangeQueryDto {
  /** 1-1000 (default 10). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @ApiPropertyOptional({ type: 'integer' })
  @Min(1)
  @Max(1000)
  readonly limit?: number;
}

export class PatternsQueryDto extends LimitedRangeQueryDto {
  /** Length of the patterns, 2-4 (default 3). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @ApiPropertyOptional({ type: 'integer' })
  @Min(2)
  @Max(4)
  readonly n?: number;
}

export class TransitionsQueryDto extends RangeQueryDto {
  /** A path item: a normalised page path, an event type, or `action:<name>`. */
  // One check with one message: IsString + MaxLength answered a missing item with
  // "item must be shorter than or equal to 2048 characters, item must be a string".
  @Matches(/^[^]{1,2048}$/, {
    message: 'item must be a page path, an event type or action:<name> (1-2048 characters)',
  })
  readonly item!: string;
}

export class FeaturesQueryDto extends RangeQueryDto {
  /** Comma-separated feature names (configured in FEATURES, or action names / prefixes). */
  @IsString()
  @Matches(/^[A-Za-z0-9._:/-]{1,128}(,[A-Za-z0-9._:/-]{1,128}){0,49}$/, {
    message:
      'features must be 1-50 comma-separated names of A-Z, a-z, 0-9, ".", "_", ":", "/" or "-"',
  })
  readonly features!: string;
}

export class JourneyQueryDto extends IntersectionType(PaginationQueryDto, TimeRangeDto) {
  /** One of the caller's sessions (default: the current session, unless from/to are given). */
  @IsOptional()
  @LowercaseId()
  @IsUUID()
  readonly session_id?: string;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  readonly include_api?: boolean;
}

/** `format` of a report download. */
export class ReportFormatQueryDto {
  @IsOptional()
  @IsIn(['json', 'csv'])
  @ApiProperty({ enum: ['json', 'csv'], required: false })
  readonly format?: 'json' | 'csv';
}

/** The system report: a range (with tz and include_api) and a format. */
export class ReportQueryDto extends IntersectionType(RangeQueryDto, ReportFormatQueryDto) {}

/**
 * The caller's own report covers all their activity: it takes a format
 * only (a range or include_api would be accepted and ignored otherwise).
 */
export class UserReportQueryDto extends ReportFormatQueryDto {}

/** Matches events of a type, optionally by name or page (`*` wildcard at either end). */
export class EventMatcherDto {
  @IsIn(EVENT_TYPES)
  @ApiProperty({ enum: EVENT_TYPES })
  readonly type!: EventType;

  @IsOptional()
  @IsString()
  // A space too: automatic api_request events are named `<METHOD> <route>` (`GET /api/session`).
  @Matches(/^\*?[A-Za-z0-9._:/ -]{0,128}\*?$/, {
    message:
      'name must be an event name (A-Z, a-z, 0-9, ".", "_", ":", "/", "-" or a space, at most 128) with an optional * at either end',
  })
  readonly name?: string;

  @IsOptional()
  @IsString()
  @MaxLength(2048)
  @HasNoNulCharacters()
  readonly page?: string;
}

/** Steps are matched from `from` (inclusive) to `to` (exclusive); default the last 30 days. */
export class FunnelDto extends TimeRangeDto {
  /** 2-10 steps in order. */
  @IsArray()
  @ArrayMinSize(2)
  @ArrayMaxSize(10)
  // An array inside (`[[], []]`) would pass as a matcher matching nothing: objects only.
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => EventMatcherDto)
  readonly steps!: EventMatcherDto[];

  /** Conversion window from step 1, 60 s to 90 days (default 14 days). */
  @IsOptional()
  @IsInt()
  @ApiPropertyOptional({ type: 'integer', maximum: 90 * 86_400 })
  @Min(60)
  @Max(90 * 86_400)
  readonly window_s?: number;

  @IsOptional()
  @IsIn(['user', 'session'])
  @ApiProperty({ enum: ['user', 'session'], required: false })
  readonly unit?: 'user' | 'session';
}

/** Cohorts whose period starts in `[from, to)`; default the last `periods` periods. */
export class RetentionDto extends TimeRangeDto {
  /** What puts an actor in a cohort (default: any event). */
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => EventMatcherDto)
  readonly start?: EventMatcherDto;

  /** What counts as coming back (default: any event). */
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => EventMatcherDto)
  readonly return?: EventMatcherDto;

  @IsIn(['day', 'week', 'month'])
  @ApiProperty({ enum: ['day', 'week', 'month'] })
  readonly period!: 'day' | 'week' | 'month';

  /** Periods after the cohort's, 1-52 (default 8). */
  @IsOptional()
  @IsInt()
  @ApiPropertyOptional({ type: 'integer' })
  @Min(1)
  @Max(52)
  readonly periods?: number;

  @IsPresentOrAbsent()
  @IsString()
  @MaxLength(64)
  readonly tz?: string;
}
