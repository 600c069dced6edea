import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import { CONSENT_SOURCES, type ConsentSource } from '../entities/consent.entity.js';

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

  @IsOptional()
  @IsIn(CONSENT_SOURCES)
  @ApiProperty({ enum: CONSENT_SOURCES, required: false })
  readonly source?: ConsentSource;
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
