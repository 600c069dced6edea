import { ApiProperty } from '@nestjs/swagger';
import {
  IsBoolean,
  IsEmail,
  IsIn,
  IsOptional,
  IsString,
  Length,
  Matches,
  MaxLength,
} from 'class-validator';
import { PaginationQueryDto } from '../../../common/pagination/pagination.js';
import { ROLES, type Role } from '../../../common/auth/auth-context.js';
import { IsPresentOrAbsent } from '../../../common/validation/present-or-absent.js';
import { USERNAME_PATTERN, USERNAME_RULE } from '../../../common/validation/username.js';

export class RegisterDto {
  /** 3-64 characters of `[A-Za-z0-9._-]`, unique regardless of case. */
  @IsString()
  @Matches(USERNAME_PATTERN, {
    message: `username ${USERNAME_RULE}`,
  })
  @ApiProperty({ pattern: USERNAME_PATTERN.source, minLength: 3, maxLength: 64 })
  readonly username!: string;

  /** 8-256 characters. */
  @IsString()
  @Length(8, 256)
  readonly password!: string;

  @IsOptional()
  @IsEmail()
  @MaxLength(254)
  readonly email?: string;
}

export class UserDto {
  readonly id!: string;
  readonly username!: string;
  readonly email!: string | null;
  @ApiProperty({ enum: ROLES })
  readonly role!: Role;
  readonly disabled!: boolean;
  /** ISO-8601 UTC. */
  readonly created_at!: string;
}

export class UserEnvelopeDto {
  readonly user!: UserDto;
}

export class UserPageDto {
  readonly items!: UserDto[];
  readonly next_cursor!: string | null;
}

export class ListUsersQueryDto extends PaginationQueryDto {}

export class UpdateUserDto {
  /** Disabling revokes every session of the user at once. */
  @IsPresentOrAbsent()
  @IsBoolean()
  readonly disabled?: boolean;

  @IsPresentOrAbsent()
  @IsIn(ROLES)
  @ApiProperty({ enum: ROLES, required: false })
  readonly role?: Role;
}

export class ChangePasswordDto {
  @IsString()
  @Length(1, 256)
  readonly current_password!: string;

  /** 8-256 characters. */
  @IsString()
  @Length(8, 256)
  readonly new_password!: string;
}
