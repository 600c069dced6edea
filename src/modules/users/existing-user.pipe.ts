import { Injectable, PipeTransform } from '@nestjs/common';
import { UsersService } from './users.service.js';

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
