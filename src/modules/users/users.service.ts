import {
  BadRequestException,
  ConflictException,
  ForbiddenException,
  Injectable,
  Logger,
  NotFoundException,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { EntityManager, Repository } from 'typeorm';
import type { AuthUser, Role } from '../../common/auth/auth-context.js';
import { AppConfig } from '../../common/config/config.js';
import { DatabaseService } from '../../common/database/database.service.js';
import { isUniqueViolation } from '../../common/database/errors.js';
import { decodeCursor, DEFAULT_PAGE_SIZE, toPage } from '../../common/pagination/pagination.js';
import { toIso } from '../../common/time.js';
import {
  ListUsersQueryDto,
  RegisterDto,
  UpdateUserDto,
  UserDto,
  UserPageDto,
} from './dto/user.dto.js';
import { User } from './entities/user.entity.js';
import { PasswordHasher } from './password-hasher.js';
import { USER_DISABLED, UserDisabledEvent } from './users.events.js';

export function toUserDto(user: User): UserDto {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    role: user.role,
    disabled: user.disabled,
    created_at: toIso(user.createdAt),
  };
}

export const NO_SUCH_USER = 'No such user';

@Injectable()
export class UsersService implements OnApplicationBootstrap {
  private readonly logger = new Logger(UsersService.name);

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly database: DatabaseService,
    private readonly hasher: PasswordHasher,
    private readonly config: AppConfig,
    private readonly events: EventEmitter2,
  ) {}

  /**
   * Creates the bootstrap admin from ADMIN_USERNAME / ADMIN_PASSWORD when it
   * does not exist. When it exists but no enabled admin is left (its last
   * admin demoted it, then erased their own account), it is made an enabled
   * admin again: the documented way back in. Only if its password is
   * ADMIN_PASSWORD, though: with open registration anyone may have taken the
   * name first, and promoting that account would hand its registrant the
   * service. Otherwise start-up logs an error and promotes nobody.
   */
  async onApplicationBootstrap(): Promise<void> {
    const { adminUsername, adminPassword } = this.config.users;
    if (!adminUsername || !adminPassword) return;
    let existing = await this.findByUsername(adminUsername);
    if (!existing) {
      try {
        await this.create(adminUsername, adminPassword, null, 'admin');
        this.logger.log(`Created bootstrap admin "${adminUsername}"`);
        return;
      } catch (error) {
        // Instances starting at once on one database: another created it first (the
        // unique username), which is not a reason for this one to fail its start-up.
        if (!(error instanceof ConflictException)) throw error;
        existing = await this.findByUsername(adminUsername);
        if (!existing) throw error;
      }
    }
    if (await this.users.existsBy({ role: 'admin', disabled: false })) return;
    if (!(await this.checkPassword(existing.id, adminPassword))) {
      this.logger.error(
        `No enabled admin left, and "${adminUsername}" is an account whose password is not ADMIN_PASSWORD: ` +
          'not promoted. Set ADMIN_PASSWORD to its password, or ADMIN_USERNAME to an unused name.',
      );
      return;
    }
    await this.users.update({ id: existing.id }, { role: 'admin', disabled: false });
    this.logger.warn(`No enabled admin left: "${adminUsername}" is an enabled admin again`);
  }

  async register(dto: RegisterDto): Promise<UserDto> {
    if (!this.config.users.registrationOpen) {
      throw new ForbiddenException({
        error: 'registration_closed',
        message: 'Registration is closed on this service',
      });
    }
    return toUserDto(await this.create(dto.username, dto.password, dto.email ?? null, 'user'));
  }

  findById(id: string): Promise<User | null> {
    return this.users.findOneBy({ id });
  }

  /** The user, or 404 `No such user` (routes and services acting on a user named by id). */
  async findExisting(id: string): Promise<User> {
    const user = await this.findById(id);
    if (!user) throw new NotFoundException(NO_SUCH_USER);
    return user;
  }

  findByUsername(username: string): Promise<User | null> {
    return this.users.findOneBy({ usernameLower: username.toLowerCase() });
  }

  /**
   * The user when `password` is theirs and the account is enabled, else null.
   * Unknown users cost the same hashing work as known ones, so timing does
   * not reveal which usernames exist; so do known users whose hash is from a
   * cheaper PASSWORD_HASH_COST (see PasswordHasher.verifyAtCurrentCost).
   * Comes with the hash it was checked against (after a rehash, the new one):
   * the login re-reads the hash in its own transaction and refuses if it
   * changed meanwhile.
   */
  async verifyCredentials(
    username: string,
    password: string,
  ): Promise<(AuthUser & { passwordHash: string }) | null> {
    const user = await this.users
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('u.usernameLower = :name', { name: username.toLowerCase() })
      .getOne();
    if (!user) return this.hasher.verifyDummy(password).then(() => null);
    const valid = await this.hasher.verifyAtCurrentCost(password, user.passwordHash);
    if (!valid || user.disabled) return null;
    const outdated = this.hasher.needsRehash(user.passwordHash);
    let passwordHash = user.passwordHash;
    if (outdated) {
      passwordHash = await this.hasher.hash(password);
      // Only over the hash just verified: a password change committed meanwhile must not be
      // overwritten with the old password (the login then fails, as its password is stale).
      const replaced = await this.database.execute(
        'UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?',
        [passwordHash, Date.now(), user.id, user.passwordHash],
      );
      if (replaced === 0) return null;
    }
    return { id: user.id, username: user.username, role: user.role, passwordHash };
  }

  /** Whether `password` is the user's current password. */
  async checkPassword(userId: string, password: string): Promise<boolean> {
    const user = await this.users
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('u.id = :id', { id: userId })
      .getOne();
    if (!user) return this.hasher.verifyDummy(password);
    return this.hasher.verify(password, user.passwordHash);
  }

  /** Hashes outside any transaction (it takes a while), for `storePasswordHash`. */
  hashPassword(password: string): Promise<string> {
    return this.hasher.hash(password);
  }

  /** Stores a hash from `hashPassword`, inside the caller's transaction when given one. */
  async storePasswordHash(userId: string, hash: string, manager?: EntityManager): Promise<void> {
    const write = (m: EntityManager) =>
      m.update(User, { id: userId }, { passwordHash: hash, updatedAt: Date.now() });
    if (manager) await write(manager);
    else await this.database.transaction(write);
  }

  /** Deletes the account row inside the erasure transaction. */
  eraseUser(userId: string, manager: EntityManager): Promise<number> {
    return this.database.executeIn(manager, 'DELETE FROM users WHERE id = ?', [userId]);
  }

  async list(query: ListUsersQueryDto): Promise<UserPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const qb = this.users
      .createQueryBuilder('u')
      .orderBy('u.createdAt', 'DESC')
      .addOrderBy('u.id', 'DESC')
      .take(limit + 1);
    if (query.cursor) {
      const [createdAt, id] = decodeCursor(query.cursor, ['time', 'uuid']);
      qb.where('(u.createdAt < :createdAt OR (u.createdAt = :createdAt AND u.id < :id))', {
        createdAt,
        id,
      });
    }
    const rows = await qb.getMany();
    return toPage(rows, limit, (u) => [u.createdAt, u.id], toUserDto);
  }

  /** Admin change of role or disabled flag. Admins cannot lock themselves out. */
  async update(id: string, dto: UpdateUserDto, actor: AuthUser): Promise<UserDto> {
    if (dto.disabled === undefined && dto.role === undefined) {
      throw new BadRequestException('Nothing to change: send "disabled" and/or "role"');
    }
    if (id === actor.id && (dto.disabled === true || dto.role === 'user')) {
      throw new ConflictException('Admins cannot disable or demote themselves');
    }
    const user = await this.database.transaction(async (manager) => {
      // Both rows locked (in id order: no deadlock), then the actor checked again: two admins
      // demoting or disabling each other at once both passed the role guard before either
      // committed, and left no admin at all. The second now finds its actor no longer one.
      for (const locked of [...new Set([id, actor.id])].sort()) {
        await this.database.lockRow(manager, 'users', locked);
      }
      const acting = await manager.findOneBy(User, { id: actor.id });
      if (!acting || acting.role !== 'admin' || acting.disabled) {
        throw new ForbiddenException('Only an enabled admin can change accounts');
      }
      const found = await manager.findOneBy(User, { id });
      if (!found) throw new NotFoundException(NO_SUCH_USER);
      if (dto.disabled !== undefined) found.disabled = dto.disabled;
      if (dto.role !== undefined) found.role = dto.role;
      found.updatedAt = Date.now();
      return manager.save(found);
    });
    if (dto.disabled === true) {
      await this.events.emitAsync(USER_DISABLED, new UserDisabledEvent(id, actor.id));
    }
    return toUserDto(user);
  }

  private async create(
    username: string,
    password: string,
    email: string | null,
    role: Role,
  ): Promise<User> {
    const passwordHash = await this.hasher.hash(password);
    const now = Date.now();
    const user = this.users.create({
      id: randomUUID(),
      username,
      usernameLower: username.toLowerCase(),
      email,
      passwordHash,
      role,
      disabled: false,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await this.database.transaction((manager) => manager.insert(User, user));
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictException('That username is taken');
      throw error;
    }
    return user;
  }
}
