import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { recordAdminRead } from '../../common/audit.js';
import type { AuthUser } from '../../common/auth/auth-context.js';
import { CurrentUser, Roles } from '../../common/auth/auth.decorators.js';
import { parseUuid } from '../../common/validation/uuid.js';
import { ApiNoSuchUser, ExistingUserPipe } from '../users/existing-user.pipe.js';
import { ActivitiesQueryDto, ActivityPageDto } from './dto/tracking.dto.js';
import { TrackingService } from './tracking.service.js';

@ApiTags('tracking')
@Controller('api')
export class ActivitiesController {
  constructor(
    private readonly tracking: TrackingService,
    private readonly emitter: EventEmitter2,
  ) {}

  /** The caller's activity history, newest first. */
  @Get('activities')
  list(
    @CurrentUser() user: AuthUser,
    @Query() query: ActivitiesQueryDto,
  ): Promise<ActivityPageDto> {
    return this.tracking.listActivities(user.id, query);
  }

  /** Any user's activity history (admin). */
  @Roles('admin')
  @Get('admin/users/:id/activities')
  @ApiOkResponse({ type: ActivityPageDto })
  @ApiNoSuchUser()
  async listForUser(
    @Param('id', parseUuid('id'), ExistingUserPipe) userId: string,
    @Query() query: ActivitiesQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<ActivityPageDto> {
    const page = await this.tracking.listActivities(userId, query);
    recordAdminRead(this.emitter, request, 'admin_activities_read', userId, page.items.length);
    return page;
  }
}
