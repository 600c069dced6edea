import { Inject, Injectable } from '@nestjs/common';
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { AppConfig } from '../../common/config/config.js';

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;

/**
 * Password hashing with scrypt (OWASP: N=2^17, r=8, p=1), from Node's crypto:
 * no native add-on to build, and it runs on libuv's thread pool so the event
 * loop stays free. argon2id would need a native package; Node 20 has none
 * built in. Hashes carry their parameters (`scrypt$17$8$1$salt$hash`), so
 * PASSWORD_HASH_COST can change without invalidating stored hashes, and
 * `needsRehash` upgrades them at the next login.
 */
@Injectable()
export class PasswordHasher {
  private readonly cost: number;
  /** Verified against for unknown users, so both paths cost the same. */
  private readonly dummyHash: Promise<string>;

  constructor(@Inject(AppConfig) config: AppConfig) {
    this.cost = config.users.passwordHashCost;
    this.dummyHash = this.hash(randomBytes(16).toString('hex'));
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_LENGTH);
    const key = await this.derive(password, salt, this.cost, BLOCK_SIZE, PARALLELISM);
    return [
      'scrypt',
      this.cost,
      BLOCK_SIZE,
      PARALLELISM,
      salt.toString('base64url'),
      key.toString('base64url'),
    ].join('$');
  }

  /** Constant-time comparison; a malformed stored hash never verifies. */
  async verify(password: string, stored: string): Promise<boolean> {
    const parts = stored.split('$');
    if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
    const [cost, blockSize, parallelism] = parts.slice(1, 4).map(Number);
    const salt = Buffer.from(parts[4], 'base64url');
    const expected = Buffer.from(parts[5], 'base64url');
    if (!cost || !blockSize || !parallelism || expected.length !== KEY_LENGTH) return false;
    const actual = await this.derive(password, salt, cost, blockSize, parallelism);
    return timingSafeEqual(actual, expected);
  }

  /** Spends the same work as a real verification and fails. */
  async verifyDummy(password: string): Promise<false> {
    await this.verify(password, await this.dummyHash);
    return false;
  }

  needsRehash(stored: string): boolean {
    return !stored.startsWith(`scrypt$${this.cost}$${BLOCK_SIZE}$${PARALLELISM}$`);
  }

  private derive(password: string, salt: Buffer, cost: number, r: number, p: number) {
    const N = 2 ** cost;
    // scrypt needs 128 * N * r bytes; Node's default cap (32 MiB) is below OWASP's setting.
    return scryptAsync(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r });
  }
}
