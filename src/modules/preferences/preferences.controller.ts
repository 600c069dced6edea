import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Req,
} from '@nestjs/common';
import { ApiBody, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { auditContext } from '../../common/audit.js';
import type { AuthUser } from '../../common/auth/auth-context.js';
import { CurrentUser } from '../../common/auth/auth.decorators.js';
import { PreferencesService } from './preferences.service.js';
import { invalidField } from '../../common/validation/invalid-field.js';

const PREFERENCES_EXAMPLE = {
  theme: 'dark',
  language: 'en',
  timezone: 'Europe/Berlin',
  notifications: { email: true, push: false, sms: false },
  privacy: { profile_public: false, show_activity: true, allow_analytics: true },
};

/** The caller's preferences. Untouched settings always keep their values. */
@ApiTags('preferences')
@Controller('api/preferences')
export class PreferencesController {
  constructor(private readonly preferences: PreferencesService) {}

  /** The effective document: defaults with the caller's settings on top. */
  @Get()
  get(@CurrentUser() user: AuthUser) {
    return this.preferences.effective(user.id);
  }

  /** The defaults every user starts from. */
  @Get('defaults')
  defaults() {
    return this.preferences.defaults();
  }

  /** Merges a partial document (seed path). Unknown keys or wrong types: 400, nothing stored. */
  @Put()
  @ApiBody({ schema: { type: 'object', example: PREFERENCES_EXAMPLE } })
  put(@CurrentUser() user: AuthUser, @Body() body: unknown, @Req() request: FastifyRequest) {
    return this.preferences.update(user.id, body, auditContext(request));
  }

  /** The same merge as PUT. */
  @Patch()
  @ApiBody({ schema: { type: 'object', example: { notifications: { sms: true } } } })
  patch(@CurrentUser() user: AuthUser, @Body() body: unknown, @Req() request: FastifyRequest) {
    return this.preferences.update(user.id, body, auditContext(request));
  }

  /** Resets every preference to its default. */
  @Post('reset')
  @HttpCode(200)
  resetAll(@CurrentUser() user: AuthUser, @Req() request: FastifyRequest) {
    return this.preferences.reset(user.id, null, auditContext(request));
  }

  /** Sets one preference (`theme`, `notifications.email`, or a group such as `privacy`). */
  @Put(':key')
  @ApiBody({ schema: { type: 'object', properties: { value: {} }, example: { value: 'dark' } } })
  setOne(
    @CurrentUser() user: AuthUser,
    @Param('key') key: string,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
  ) {
    const payload = body as { value?: unknown } | null;
    if (
      payload === null ||
      typeof payload !== 'object' ||
      !('value' in payload) ||
      Object.keys(payload).length !== 1
    ) {
      throw invalidField(
        'value',
        'is required, and the only field',
        'The body must be {"value": <the new value>}',
      );
    }
    return this.preferences.setOne(user.id, key, payload.value, auditContext(request));
  }

  /** Resets one preference (or group) to its default. */
  @Delete(':key')
  reset(@CurrentUser() user: AuthUser, @Param('key') key: string, @Req() request: FastifyRequest) {
    return this.preferences.reset(user.id, key, auditContext(request));
  }
}
