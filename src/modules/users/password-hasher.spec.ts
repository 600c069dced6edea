import type { AppConfig } from '../../common/config/config';
import { PasswordHasher } from './password-hasher';

const hasherAt = (cost: number) =>
  new PasswordHasher({ users: { passwordHashCost: cost } } as AppConfig);

/**
 * The scrypt costs each call derived at, in order. scrypt's work is
 * proportional to 2^cost, so the sum of 2^cost is the work spent.
 */
function recordCosts(hasher: PasswordHasher): { costs: number[]; work: () => number } {
  jest.restoreAllMocks(); // a recording from before ends here
  const costs: number[] = [];
  const spied = hasher as unknown as {
    derive: (password: string, salt: Buffer, cost: number, r: number, p: number) => unknown;
  };
  const derive = spied.derive.bind(hasher);
  jest.spyOn(spied, 'derive').mockImplementation((password, salt, cost, r, p) => {
    costs.push(cost);
    return derive(password, salt, cost, r, p);
  });
  return { costs, work: () => costs.reduce((sum, cost) => sum + 2 ** cost, 0) };
}

describe('PasswordHasher', () => {
  const current = hasherAt(12);
  let lowerCostHash: string;
  beforeAll(async () => {
    lowerCostHash = await hasherAt(10).hash('the right password');
  });
  afterEach(() => jest.restoreAllMocks());

  it('spends as much on a wrong password against a cheaper hash as on an unknown name', async () => {
    const dummy = recordCosts(current);
    expect(await current.verifyDummy('a guess')).toBe(false);
    expect(dummy.costs).toEqual([12]);

    const wrong = recordCosts(current);
    expect(await current.verifyAtCurrentCost('a guess', lowerCostHash)).toBe(false);
    // 2^10 for the check itself, then 2^10 + 2^11 more: 2^12, as the dummy check.
    expect(wrong.costs).toEqual([10, 10, 11]);
    expect(wrong.work()).toBe(dummy.work());
  });

  it('adds nothing to a right password (the login rehashes it) or to a current hash', async () => {
    const right = recordCosts(current);
    expect(await current.verifyAtCurrentCost('the right password', lowerCostHash)).toBe(true);
    expect(right.costs).toEqual([10]);

    const currentHash = await current.hash('the right password');
    const wrong = recordCosts(current);
    expect(await current.verifyAtCurrentCost('a guess', currentHash)).toBe(false);
    expect(wrong.costs).toEqual([12]);
  });

  it('cannot take work back from a hash of a higher cost, and refuses a malformed one', async () => {
    const lowered = hasherAt(10);
    const strongerHash = await current.hash('the right password');
    const wrong = recordCosts(lowered);
    expect(await lowered.verifyAtCurrentCost('a guess', strongerHash)).toBe(false);
    expect(wrong.costs).toEqual([12]);
    expect(await lowered.verifyAtCurrentCost('a guess', 'scrypt$10$8$1$bad')).toBe(false);
    expect(wrong.costs).toEqual([12]);
  });
});
