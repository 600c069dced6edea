import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import { CONSENT_SOURCES, type ConsentSource } from '../entities/consent.entity.js';
import { LowercaseId } from '../../../common/validation/uuid.js';

/** The consent sources a user may give for their own decisions. */
const SELF_SERVICE_SOURCES = ['api', 'settings'] as const satisfies readonly ConsentSource[];
type SelfServiceSource = (typeof SELF_SERVICE_SOURCES)[number];

export class RecordConsentDto {
  /** One of CONSENT_TYPES (default analytics, marketing, personalization). */
  @IsString()
  @MaxLength(64)
  readonly consent_type!: string;

  /** A JSON boolean: true grants, false withdraws. */
  @IsBoolean()
  readonly granted!: boolean;

  /** Version of the policy the user saw. */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9._-]{1,32}$/, {
    message: 'policy_version must be 1-32 characters of A-Z, a-z, 0-9, ".", "_" or "-"',
  })
  readonly policy_version?: string;

  /**
   * Where the user decided (default api). `admin` and `import` are not for
   * users to claim: they would make the ledger's record of who recorded a
   * decision unreliable.
   */
  @IsOptional()
  @IsIn(SELF_SERVICE_SOURCES)
  @ApiProperty({ enum: SELF_SERVICE_SOURCES, required: false })
  readonly source?: SelfServiceSource;
}

export class AuditQueryDto extends PaginationQueryDto {
  @IsOptional()
  @IsString()
  @MaxLength(64)
  readonly action?: string;

  @IsOptional()
  @LowercaseId()
  @IsUUID()
  readonly user_id?: string;
}

/** What an erasure removed, and its receipt (kept without personal data). */
export class ErasureResultDto {
  readonly user_id!: string;
  readonly sessions_deleted!: number;
  readonly activities_deleted!: number;
  readonly preferences_deleted!: number;
  readonly consent_deleted!: number;
  /** ISO-8601 UTC. */
  readonly deleted_at!: string;
  readonly receipt_id!: string;
  /** True when no row of any table names the user any more. */
  readonly verified!: boolean;
}

/** One decision of the consent ledger. */
export class ConsentRecordDto {
  readonly id!: number;
  readonly consent_type!: string;
  readonly granted!: boolean;
  readonly policy_version!: string | null;
  @ApiProperty({ enum: CONSENT_SOURCES })
  readonly source!: ConsentSource;
  /** Public id of the session that recorded it. */
  readonly session_id!: string | null;
  readonly request_id!: string | null;
  readonly recorded_at!: string;
}

export class ConsentRecordedDto {
  readonly status!: 'success';
  readonly message!: string;
  readonly consent!: ConsentRecordDto;
}

/** The current state of one consent type. */
export class ConsentStateDto {
  readonly consent_type!: string;
  readonly granted!: boolean;
  /** True when the user never decided: `granted` is then the default. */
  readonly default!: boolean;
  readonly policy_version!: string | null;
  @ApiProperty({ enum: CONSENT_SOURCES, nullable: true })
  readonly source!: ConsentSource | null;
  readonly recorded_at!: string | null;
}

export class CurrentConsentsDto {
  /** TRACKING_CONSENT_MODE. */
  readonly mode!: 'opt-out' | 'opt-in';
  readonly consents!: ConsentStateDto[];
}

export class ConsentPageDto {
  readonly items!: ConsentRecordDto[];
  readonly next_cursor!: string | null;
}

/** Rows each retention policy removed (IPs: anonymised). */
export class RetentionCountsDto {
  readonly events!: number;
  readonly session_events!: number;
  readonly audit_log!: number;
  readonly ips_anonymised!: number;
}

/** The configured policies, in days (0: kept). */
export class RetentionPoliciesDto {
  readonly events_days!: number;
  readonly session_events_days!: number;
  readonly audit_days!: number;
  readonly ip_days!: number;
  readonly batch!: number;
  readonly cron!: string;
}

export class RetentionRunDto {
  readonly id!: number;
  /** `schedule` or `manual`. */
  readonly trigger!: string;
  readonly counts!: RetentionCountsDto;
  readonly error!: string | null;
  readonly started_at!: string;
  readonly finished_at!: string;
}

export class RetentionStatusDto {
  readonly policies!: RetentionPoliciesDto;
  /** The latest runs, newest first. */
  readonly runs!: RetentionRunDto[];
}

export class RetentionRunResultDto {
  /** `completed`, or `skipped: another run is in progress` (counts then null). */
  readonly status!: string;
  readonly counts!: RetentionCountsDto | null;
}

export class AuditEntryDto {
  readonly id!: number;
  /** `user`, `admin` or `system`. */
  readonly actor_type!: string;
  readonly actor_user_id!: string | null;
  readonly action!: string;
  readonly target_user_id!: string | null;
  /** Non-secret details of the action (null when it has none, e.g. `export`). */
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  readonly details!: Record<string, unknown> | null;
  readonly session_id!: string | null;
  readonly request_id!: string | null;
  readonly created_at!: string;
}

export class AuditPageDto {
  readonly items!: AuditEntryDto[];
  readonly next_cursor!: string | null;
}
