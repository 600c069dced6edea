import {
  Body,
  Controller,
  Delete,
  ForbiddenException,
  Get,
  HttpCode,
  Param,
  Post,
  Put,
  Req,
  Res,
} from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthSession } from '../../common/auth/auth-context.js';
import { AllowAnonymousSession, CurrentSession } from '../../common/auth/auth.decorators.js';
import { AppConfig } from '../../common/config/config.js';
import { Public } from '../../common/decorators/public.decorator.js';
import { setRequestIdentity } from '../../common/http/request-context.js';
import { clientMeta } from './client-meta.js';
import {
  CurrentSessionEnvelopeDto,
  PutSessionDataDto,
  SESSION_DATA_KEY_PATTERN,
  SessionCreatedDto,
  SessionDataDto,
  SessionDataEntryDto,
  StatusMessageDto,
} from './dto/session.dto.js';
import { setSessionCookie } from './session-cookie.js';
import { SessionDataService } from './session-data.service.js';
import { SessionService } from './session.service.js';
import { invalidField } from '../../common/validation/invalid-field.js';

function assertKey(key: string): string {
  if (!SESSION_DATA_KEY_PATTERN.test(key)) {
    throw invalidField('key', 'must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"');
  }
  return key;
}

/** The current session (anonymous or signed in) and its state. */
@ApiTags('session')
@AllowAnonymousSession()
@Controller('api/session')
export class SessionController {
  constructor(
    private readonly sessions: SessionService,
    private readonly data: SessionDataService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Starts an anonymous session (ANONYMOUS_SESSIONS): 201 with the token.
   * A caller that already has a valid session gets it back (200, no token).
   */
  @Public()
  @Post()
  @HttpCode(201)
  @ApiCreatedResponse({ type: SessionCreatedDto, description: 'A new anonymous session' })
  @ApiOkResponse({ type: SessionCreatedDto, description: 'The caller already had a session' })
  @ApiResponse({ status: 403, description: 'Anonymous sessions are disabled' })
  async create(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionCreatedDto> {
    if (request.auth) {
      void reply.status(200);
      return { status: 'success', session: this.sessions.toDto(request.auth.session) };
    }
    if (!this.config.session.anonymousSessions) {
      throw new ForbiddenException({
        error: 'anonymous_sessions_disabled',
        message: 'Anonymous sessions are disabled; log in instead',
      });
    }
    const issued = await this.sessions.createAnonymous(clientMeta(request));
    setRequestIdentity(request, { sessionId: issued.session.id, userId: null });
    setSessionCookie(reply, issued.token, { secure: this.config.session.cookieSecure });
    return {
      status: 'success',
      session_id: issued.token,
      session: this.sessions.toDto(issued.session),
    };
  }

  /** The current session, its device and its data. */
  @Get()
  async current(@CurrentSession() session: AuthSession): Promise<CurrentSessionEnvelopeDto> {
    return {
      session: { ...this.sessions.toDto(session), data: await this.data.getAll(session.id) },
      user_id: session.userId,
    };
  }

  /** All keys of the session's data. */
  @Get('data')
  async allData(@CurrentSession() session: AuthSession): Promise<SessionDataDto> {
    return { data: await this.data.getAll(session.id) };
  }

  @Get('data/:key')
  @ApiOkResponse({ type: SessionDataEntryDto })
  @ApiResponse({ status: 404, description: 'No data under that key' })
  async getData(
    @CurrentSession() session: AuthSession,
    @Param('key') key: string,
  ): Promise<SessionDataEntryDto> {
    return { key, value: await this.data.get(session.id, assertKey(key)) };
  }

  /** Sets one key. Each value and the session's total are size-limited (413). */
  @Put('data/:key')
  @ApiOkResponse({ type: SessionDataEntryDto })
  @ApiResponse({ status: 413, description: 'The value or the session total is too large' })
  async putData(
    @CurrentSession() session: AuthSession,
    @Param('key') key: string,
    @Body() dto: PutSessionDataDto,
  ): Promise<SessionDataEntryDto> {
    if (dto.value === undefined) throw invalidField('value', 'is required (any JSON value)');
    await this.data.put(session.id, assertKey(key), dto.value);
    return { key, value: dto.value };
  }

  @Delete('data/:key')
  @ApiOkResponse({ type: StatusMessageDto })
  @ApiResponse({ status: 404, description: 'No data under that key' })
  async deleteData(
    @CurrentSession() session: AuthSession,
    @Param('key') key: string,
  ): Promise<StatusMessageDto> {
    await this.data.delete(session.id, assertKey(key));
    return { status: 'success', message: `Deleted "${key}"` };
  }
}
