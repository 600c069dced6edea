import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { Allow, IsBoolean, IsIn, IsOptional, IsString, IsUUID, Length } from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import { HasNoNulCharacters } from '../../../common/validation/no-nul.js';
import { LowercaseId } from '../../../common/validation/uuid.js';

export class DeviceDto {
  /** Browser name and major version, e.g. `Chrome 118`; null when unknown. */
  readonly browser!: string | null;
  /** Operating system, e.g. `Android 10`; null when unknown. */
  readonly os!: string | null;
  /** `desktop`, `mobile`, `tablet`, ... */
  readonly type!: string;
}

export class SessionDto {
  /** Public session id (never the token). */
  readonly id!: string;
  readonly user_id!: string | null;
  readonly anonymous!: boolean;
  readonly created_at!: string;
  /** Last recorded activity (updated at most once per SESSION_TOUCH_INTERVAL_S). */
  readonly last_activity!: string;
  /** When the session ends if not used again: the earlier of the idle and absolute deadlines. */
  readonly expires_at!: string;
  readonly idle_expires_at!: string;
  readonly absolute_expires_at!: string;
  /** Last password proof (login or reauth); null for anonymous sessions. */
  readonly auth_time!: string | null;
  readonly remember_me!: boolean;
  readonly ip_address!: string | null;
  readonly user_agent!: string | null;
  readonly device!: DeviceDto;
}

export class SessionListItemDto extends SessionDto {
  /** True for the session making this request. */
  readonly current!: boolean;
}

export class SessionListDto {
  readonly items!: SessionListItemDto[];
}

export class CurrentSessionDto extends SessionDto {
  /** The session's state, key by key. */
  readonly data!: Record<string, unknown>;
}

export class CurrentSessionEnvelopeDto {
  readonly session!: CurrentSessionDto;
  readonly user_id!: string | null;
}

export class LoginDto {
  @IsString()
  @Length(1, 64)
  @HasNoNulCharacters()
  readonly username!: string;

  @IsString()
  @Length(1, 256)
  readonly password!: string;

  /** Longer idle and absolute lifetimes, and a persistent cookie (`Max-Age`). */
  @IsOptional()
  @IsBoolean()
  readonly remember_me?: boolean;
}

export class LoginResponseDto {
  readonly status!: 'success';
  readonly message!: string;
  readonly user_id!: string;
  readonly username!: string;
  readonly role!: string;
  /** The secret session token, for bearer / X-Session-ID clients. Browsers use the cookie. */
  readonly session_id!: string;
  readonly session!: SessionDto;
}

export class SessionCreatedDto {
  readonly status!: 'success';
  /** The secret session token; absent when the caller already had a session. */
  readonly session_id?: string;
  readonly session!: SessionDto;
}

export class StatusMessageDto {
  readonly status!: 'success';
  readonly message!: string;
}

export class ReauthDto {
  @IsString()
  @Length(1, 256)
  readonly password!: string;
}

export class TokenRotatedDto {
  readonly status!: 'success';
  readonly message!: string;
  /** The new secret session token; the old one no longer works. */
  readonly session_id!: string;
  readonly session!: SessionDto;
}

export class PasswordChangedDto extends TokenRotatedDto {
  /** Other sessions of the user that were revoked. */
  readonly revoked!: number;
}

export class RevokeScopeQueryDto {
  /** `others`: every session but this one; `all`: this one too. */
  @IsIn(['others', 'all'])
  @ApiProperty({ enum: ['others', 'all'] })
  readonly scope!: 'others' | 'all';
}

export class RevokedCountDto {
  readonly revoked!: number;
}

export const SESSION_DATA_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export class SessionDataDto {
  readonly data!: Record<string, unknown>;
}

/** Any JSON value in the OpenAPI document (the plugin would infer `object` from `unknown`). */
const ANY_JSON = {
  description: 'Any JSON value',
  nullable: true,
  oneOf: [
    { type: 'object' },
    { type: 'array', items: {} },
    { type: 'string' },
    { type: 'number' },
    { type: 'boolean' },
  ],
};

export class SessionDataEntryDto {
  readonly key!: string;
  @ApiProperty(ANY_JSON)
  readonly value!: unknown;
}

export class PutSessionDataDto {
  /** Any JSON value (null included), at most SESSION_DATA_VALUE_MAX_BYTES as JSON. */
  @Allow()
  @ApiProperty(ANY_JSON)
  @Transform(({ obj }: { obj: Record<string, unknown> }) => obj.value, { toClassOnly: true })
  readonly value!: unknown;
}

export class SessionEventDto {
  readonly id!: number;
  readonly type!: string;
  readonly reason!: string | null;
  readonly session_id!: string;
  readonly user_id!: string | null;
  readonly ip_address!: string | null;
  readonly created_at!: string;
}

export class SessionEventPageDto {
  readonly items!: SessionEventDto[];
  readonly next_cursor!: string | null;
}

export class ListSessionEventsQueryDto extends PaginationQueryDto {
  /** Only events of this user. */
  @IsOptional()
  @LowercaseId()
  @IsUUID()
  readonly user_id?: string;
}
