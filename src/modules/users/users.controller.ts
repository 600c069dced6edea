import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../../common/auth/auth-context.js';
import { CurrentUser } from '../../common/auth/auth.decorators.js';
import { Public } from '../../common/decorators/public.decorator.js';
import { RegisterDto, UserEnvelopeDto } from './dto/user.dto.js';
import { toUserDto, UsersService } from './users.service.js';

@ApiTags('auth')
@Controller()
export class UsersController {
  constructor(private readonly users: UsersService) {}

  /** Creates an account (when REGISTRATION_OPEN). Log in afterwards to get a session. */
  @Public()
  @Post('auth/register')
  @HttpCode(201)
  @ApiCreatedResponse({ type: UserEnvelopeDto })
  @ApiResponse({ status: 409, description: 'The username is taken (case-insensitively)' })
  @ApiResponse({ status: 403, description: 'Registration is closed' })
  async register(@Body() dto: RegisterDto): Promise<UserEnvelopeDto> {
    return { user: await this.users.register(dto) };
  }

  /** The caller's profile. */
  @Get('api/me')
  async me(@CurrentUser() current: AuthUser): Promise<UserEnvelopeDto> {
    const user = await this.users.findExisting(current.id);
    return { user: toUserDto(user) };
  }
}
