import { Injectable, PipeTransform } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { NO_SUCH_USER, UsersService } from './users.service.js';

/** Documents the 404 of an admin route about one user (ExistingUserPipe, or the service's check). */
export const ApiNoSuchUser = () => ApiResponse({ status: 404, description: NO_SUCH_USER });

/**
 * For admin routes about one user (`/api/admin/users/:id/...`), after
 * ParseUUIDPipe: 404 `No such user` when the user does not exist, as the
 * export, erasure and account routes answer, instead of an empty list that
 * reads as "this user has nothing".
 */
@Injectable()
export class ExistingUserPipe implements PipeTransform<string, Promise<string>> {
  constructor(private readonly users: UsersService) {}

  async transform(userId: string): Promise<string> {
    await this.users.findExisting(userId);
    return userId;
  }
}
