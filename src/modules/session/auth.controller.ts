import { Body, Controller, HttpCode, Post, Req, Res, UnauthorizedException } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthSession, AuthUser } from '../../common/auth/auth-context.js';
import {
  AllowAnonymousSession,
  CurrentSession,
  CurrentUser,
} from '../../common/auth/auth.decorators.js';
import { AppConfig } from '../../common/config/config.js';
import { Public } from '../../common/decorators/public.decorator.js';
import { setRequestIdentity } from '../../common/http/request-context.js';
import { ChangePasswordDto } from '../users/dto/user.dto.js';
import { UsersService } from '../users/users.service.js';
import { clientMeta } from './client-meta.js';
import {
  LoginDto,
  LoginResponseDto,
  PasswordChangedDto,
  ReauthDto,
  StatusMessageDto,
  TokenRotatedDto,
} from './dto/session.dto.js';
import { LoginThrottleService } from './login-throttle.service.js';
import { clearSessionCookie, setSessionCookie } from './session-cookie.js';
import { INVALID_CREDENTIALS, IssuedSession, SessionService } from './session.service.js';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly throttle: LoginThrottleService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Starts a session: the token comes back in the `session_id` cookie and in
   * the body (for bearer / X-Session-ID clients). Logging in from an
   * anonymous session keeps its id, data and events.
   */
  @Public()
  @Post('login')
  @HttpCode(200)
  @ApiOkResponse({ type: LoginResponseDto })
  @ApiResponse({ status: 401, description: 'Unknown user or wrong password (same answer)' })
  @ApiResponse({ status: 429, description: 'Too many failed logins for this username and IP' })
  async login(
    @Body() dto: LoginDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<LoginResponseDto> {
    const meta = clientMeta(request);
    const throttleKey = this.throttle.keyFor(dto.username, meta.ip);
    const verified = await this.throttle.attempt(throttleKey, () =>
      this.users.verifyCredentials(dto.username, dto.password),
    );
    if (!verified) throw new UnauthorizedException(INVALID_CREDENTIALS);
    const { passwordHash, ...user } = verified;
    const issued = await this.sessions.login(
      user,
      passwordHash,
      dto.remember_me ?? false,
      meta,
      request.auth?.session,
    );
    setRequestIdentity(request, { sessionId: issued.session.id, userId: user.id });
    this.sendToken(reply, issued);
    return {
      status: 'success',
      message: 'Login successful',
      user_id: user.id,
      username: user.username,
      role: user.role,
      session_id: issued.token,
      session: this.sessions.toDto(issued.session),
    };
  }

  /** Ends the current session and clears the cookie. */
  @AllowAnonymousSession()
  @Post('logout')
  @HttpCode(200)
  async logout(
    @CurrentSession() session: AuthSession,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<StatusMessageDto> {
    await this.sessions.logout(session, clientMeta(request));
    clearSessionCookie(reply, this.config.session.cookieSecure);
    void reply.header('clear-site-data', '"cookies"');
    return { status: 'success', message: 'Logout successful' };
  }

  /**
   * Confirms the password for sensitive operations: stamps `auth_time` and
   * rotates the token (the old one stops working).
   */
  @Post('reauth')
  @HttpCode(200)
  @ApiOkResponse({ type: TokenRotatedDto })
  @ApiResponse({ status: 401, description: 'Wrong password' })
  @ApiResponse({ status: 429, description: 'Too many wrong passwords for this user and IP' })
  async reauth(
    @Body() dto: ReauthDto,
    @CurrentUser() user: AuthUser,
    @CurrentSession() session: AuthSession,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TokenRotatedDto> {
    if (!(await this.passwordMatches(user, dto.password, request))) {
      throw new UnauthorizedException('Wrong password');
    }
    const issued = await this.sessions.rotate(session, 'reauth', clientMeta(request));
    this.sendToken(reply, issued);
    return {
      status: 'success',
      message: 'Re-authenticated',
      session_id: issued.token,
      session: this.sessions.toDto(issued.session),
    };
  }

  /**
   * Changes the password. In one transaction: the new hash is stored, this
   * session gets a new token, and every other session of the user is revoked.
   */
  @Post('password')
  @HttpCode(200)
  @ApiOkResponse({ type: PasswordChangedDto })
  @ApiResponse({ status: 401, description: 'Wrong current password' })
  @ApiResponse({ status: 429, description: 'Too many wrong passwords for this user and IP' })
  async changePassword(
    @Body() dto: ChangePasswordDto,
    @CurrentUser() user: AuthUser,
    @CurrentSession() session: AuthSession,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PasswordChangedDto> {
    if (!(await this.passwordMatches(user, dto.current_password, request))) {
      throw new UnauthorizedException('Wrong current password');
    }
    const meta = clientMeta(request);
    const hash = await this.users.hashPassword(dto.new_password);
    let revoked = 0;
    const issued = await this.sessions.rotate(session, 'password_change', meta, async (manager) => {
      await this.users.storePasswordHash(user.id, hash, manager);
      revoked = await this.sessions.revokeAllForUser(user.id, 'password_change', meta.ip, {
        exceptSessionId: session.id,
        manager,
      });
    });
    this.sendToken(reply, issued);
    return {
      status: 'success',
      message: 'Password changed',
      session_id: issued.token,
      session: this.sessions.toDto(issued.session),
      revoked,
    };
  }

  /**
   * A signed-in user's password check (reauth, password change), throttled
   * like logins and sharing their count (username + IP): whoever holds a
   * stolen session must not get unlimited guesses at the password that
   * unlocks fresh-auth operations. 429 once the limit is reached.
   */
  private async passwordMatches(
    user: AuthUser,
    password: string,
    request: FastifyRequest,
  ): Promise<boolean> {
    const key = this.throttle.keyFor(user.username, clientMeta(request).ip);
    const matched = await this.throttle.attempt(key, async () =>
      (await this.users.checkPassword(user.id, password)) ? true : null,
    );
    return matched === true;
  }

  private sendToken(reply: FastifyReply, issued: IssuedSession): void {
    setSessionCookie(reply, issued.token, {
      secure: this.config.session.cookieSecure,
      maxAgeS: this.sessions.cookieMaxAgeS(issued.session),
    });
  }
}
