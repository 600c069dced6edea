import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import type { ConsentSource } from '../entities/consent.entity.js';

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
