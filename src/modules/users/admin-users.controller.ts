import { Body, Controller, Get, Param, Patch, Query, Req } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { FastifyRequest } from 'fastify';
import { AUDIT_EVENT, auditContext, recordAdminRead } from '../../common/audit.js';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../../common/auth/auth-context.js';
import { CurrentUser, Roles } from '../../common/auth/auth.decorators.js';
import { ListUsersQueryDto, UpdateUserDto, UserDto, UserPageDto } from './dto/user.dto.js';
import { ApiNoSuchUser } from './existing-user.pipe.js';
import { UsersService } from './users.service.js';
import { parseUuid } from '../../common/validation/uuid.js';

@ApiTags('admin')
@Roles('admin')
@Controller('api/admin/users')
export class AdminUsersController {
  constructor(
    private readonly users: UsersService,
    private readonly emitter: EventEmitter2,
  ) {}

  /** Every account, newest first. */
  @Get()
  async list(
    @Query() query: ListUsersQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<UserPageDto> {
    const page = await this.users.list(query);
    recordAdminRead(this.emitter, request, 'admin_users_read', null, page.items.length);
    return page;
  }

  /** Disables/enables an account or changes its role. Disabling revokes all its sessions. */
  @Patch(':id')
  @ApiOkResponse({ type: UserDto })
  @ApiNoSuchUser()
  @ApiResponse({ status: 409, description: 'An admin tried to disable or demote themselves' })
  async update(
    @Param('id', parseUuid('id')) id: string,
    @Body() dto: UpdateUserDto,
    @CurrentUser() actor: AuthUser,
    @Req() request: FastifyRequest,
  ): Promise<UserDto> {
    const user = await this.users.update(id, dto, actor);
    this.emitter.emit(AUDIT_EVENT, {
      ...auditContext(request),
      action: 'admin_user_update',
      targetUserId: id,
      details: { disabled: dto.disabled, role: dto.role },
    });
    return user;
  }
}
