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

/** The parts of a stored `scrypt$cost$r$p$salt$hash`, or null when it is not one. */
function parseHash(stored: string) {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [cost, blockSize, parallelism] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  if (!cost || !blockSize || !parallelism || expected.length !== KEY_LENGTH) return null;
  return { cost, blockSize, parallelism, salt, expected };
}

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
    const parsed = parseHash(stored);
    return parsed !== null && this.matches(password, parsed);
  }

  /**
   * `verify`, where a wrong password costs what a check at the current cost
   * costs (as `verifyDummy`, and so an unknown username, does) also against a
   * hash from a lower PASSWORD_HASH_COST: scrypt's work is proportional to
   * N = 2^cost, so after a check at cost c0 below the current c, derivations
   * at costs c0, c0+1, ..., c-1 add 2^c - 2^c0, making 2^c in all. (A whole
   * dummy check added instead made 2^c0 + 2^c: such accounts answered a
   * wrong password later than an unknown name, and could be told apart; found
   * by review.) A hash from a higher cost, after the setting was lowered,
   * costs more than an unknown name until its next login rehashes it: work
   * done cannot be taken back.
   */
  async verifyAtCurrentCost(password: string, stored: string): Promise<boolean> {
    const parsed = parseHash(stored);
    if (!parsed) return false;
    if (await this.matches(password, parsed)) return true;
    if (parsed.blockSize !== BLOCK_SIZE || parsed.parallelism !== PARALLELISM) return false;
    for (let cost = parsed.cost; cost < this.cost; cost++) {
      await this.derive(password, parsed.salt, cost, BLOCK_SIZE, PARALLELISM);
    }
    return false;
  }

  /** Spends the same work as a real verification and fails. */
  async verifyDummy(password: string): Promise<false> {
    await this.verify(password, await this.dummyHash);
    return false;
  }

  private async matches(password: string, hash: NonNullable<ReturnType<typeof parseHash>>) {
    const { cost, blockSize, parallelism, salt, expected } = hash;
    const actual = await this.derive(password, salt, cost, blockSize, parallelism);
    return timingSafeEqual(actual, expected);
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
