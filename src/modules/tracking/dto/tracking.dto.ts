import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { TimeRangeDto } from '../../../common/dto/time-range.dto.js';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  MaxLength,
} from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import { IsBoundedJsonObject } from '../../../common/validation/json-object.validator.js';
import { IsIsoTimestamp } from '../../../common/validation/iso-timestamp.validator.js';
import { IsPresentOrAbsent } from '../../../common/validation/present-or-absent.js';
import { EVENT_TYPES, type EventType } from '../entities/event.entity.js';
import { LowercaseId } from '../../../common/validation/uuid.js';

export const NAME_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
const NAME_MESSAGE =
  '$property must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":", "/" or "-"';
export const PROPERTIES_LIMITS = { maxBytes: 8192, maxDepth: 5 };
export const MAX_PATH_LENGTH = 2048;

export class TrackPageDto {
  /** Page path or URL; stored without query string or trailing slash. */
  @IsString()
  @Length(1, MAX_PATH_LENGTH)
  @ApiProperty({ minLength: 1, maxLength: MAX_PATH_LENGTH })
  readonly page!: string;

  @IsPresentOrAbsent()
  @IsString()
  @MaxLength(512)
  readonly title?: string;

  @IsPresentOrAbsent()
  @IsString()
  @MaxLength(MAX_PATH_LENGTH)
  @ApiPropertyOptional({ maxLength: MAX_PATH_LENGTH })
  readonly referrer?: string;

  /** JSON object, at most 8 KB and 5 levels deep. */
  @IsPresentOrAbsent()
  @IsBoundedJsonObject(PROPERTIES_LIMITS)
  readonly properties?: Record<string, unknown>;
}

export class TrackActionDto {
  /** The real action name, e.g. `checkout.submit`. */
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  @ApiProperty({ pattern: NAME_PATTERN.source })
  readonly action!: string;

  /** JSON object, at most 8 KB and 5 levels deep. */
  @IsOptional()
  @IsBoundedJsonObject(PROPERTIES_LIMITS)
  readonly details?: Record<string, unknown>;

  /**
   * Feature the action belongs to, stored with it as `properties.feature`
   * (seed field). Feature-usage analytics count actions by name: those that
   * FEATURES maps to the feature, else the action `<feature>` and actions
   * named `<feature>.*` (name actions that way, e.g. `export.csv`). Matching
   * this field instead would read every action's properties of all time.
   */
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  @ApiPropertyOptional({ pattern: NAME_PATTERN.source })
  readonly feature?: string;
}

export const CLIENT_EVENT_TYPES = ['page_view', 'action', 'error', 'custom'] as const;

/** One event of a client batch; validated one by one so bad events are rejected alone. */
export class BatchEventDto {
  /** Idempotency key: a resent event with the same id is a duplicate. */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9._:-]{1,64}$/, {
    message: 'event_id must be 1-64 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"',
  })
  readonly event_id?: string;

  @IsIn(CLIENT_EVENT_TYPES)
  @ApiProperty({ enum: CLIENT_EVENT_TYPES })
  readonly type!: (typeof CLIENT_EVENT_TYPES)[number];

  /** Action or custom event name (required for `action` and `custom`). */
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  @ApiPropertyOptional({ pattern: NAME_PATTERN.source })
  readonly name?: string;

  /** Page path: required for `page_view`, kept (normalised) for any type, e.g. where an error happened. */
  @IsOptional()
  @IsString()
  @Length(1, MAX_PATH_LENGTH)
  @ApiPropertyOptional({ minLength: 1, maxLength: MAX_PATH_LENGTH })
  readonly page?: string;

  @IsOptional()
  @IsBoundedJsonObject(PROPERTIES_LIMITS)
  readonly properties?: Record<string, unknown>;

  /**
   * When it happened (ISO-8601 with an offset), within the last 7 days (or
   * RETENTION_EVENTS_DAYS, if shorter) and at most 5 minutes ahead.
   */
  @IsOptional()
  @IsIsoTimestamp()
  readonly occurred_at?: string;
}

export class TrackBatchDto {
  /** 1-1000 events. Each is checked on its own; see `rejected` in the answer. */
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ApiProperty({ type: [BatchEventDto] })
  readonly events!: unknown[];
}

export class TrackedDto {
  readonly status!: 'success';
  readonly message!: string;
  /** Id of the stored event; null when privacy settings or consent kept it from being stored. */
  readonly event_id!: string | null;
  readonly stored!: boolean;
  /** The new anonymous session's token, when this request started one. */
  readonly session_id?: string;
}

export class RejectedEventDto {
  readonly index!: number;
  readonly reason!: string;
}

export class BatchResultDto {
  /** Events stored now. */
  readonly accepted!: number;
  /** Events already stored earlier (same event_id). */
  readonly duplicates!: number;
  /** Valid events not stored because consent or privacy settings forbid analytics. */
  readonly skipped!: number;
  readonly rejected!: RejectedEventDto[];
  readonly session_id?: string;
}

export class ActivityDto {
  readonly id!: number;
  readonly event_id!: string;
  @ApiProperty({ enum: EVENT_TYPES })
  readonly type!: EventType;
  readonly name!: string | null;
  readonly page!: string | null;
  readonly properties!: Record<string, unknown> | null;
  readonly session_id!: string | null;
  readonly occurred_at!: string;
}

export class ActivityPageDto {
  readonly items!: ActivityDto[];
  readonly next_cursor!: string | null;
}

export class ActivitiesQueryDto extends IntersectionType(PaginationQueryDto, TimeRangeDto) {
  @IsOptional()
  @IsIn(EVENT_TYPES)
  @ApiProperty({ enum: EVENT_TYPES, required: false })
  readonly type?: EventType;

  @IsOptional()
  @IsString()
  @MaxLength(128)
  readonly name?: string;

  @IsOptional()
  @LowercaseId()
  @IsUUID()
  readonly session_id?: string;
}

export class StreamQueryDto {
  /** Only events of this user. */
  @IsOptional()
  @LowercaseId()
  @IsUUID()
  readonly user_id?: string;
}
