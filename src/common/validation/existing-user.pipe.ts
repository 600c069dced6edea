import { Injectable, NotFoundException, PipeTransform } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';

/**
 * For admin routes about one user (`/api/admin/users/:id/...`), after
 * ParseUUIDPipe: 404 when no such user exists, as the export, erasure and
 * account routes answer, instead of an empty list that reads as "this user
 * has nothing".
 */
@Injectable()
export class ExistingUserPipe implements PipeTransform<string, Promise<string>> {
  constructor(private readonly database: DatabaseService) {}

  async transform(userId: string): Promise<string> {
    const [found] = await this.database.query<{ id: string }>('SELECT id FROM users WHERE id = ?', [
      userId,
    ]);
    if (!found) throw new NotFoundException('No such user');
    return userId;
  }
}
