import { BadRequestException } from '@nestjs/common';
import { decodeCursor, encodeCursor } from './pagination';

const USER = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe('decodeCursor', () => {
  it('reads back what encodeCursor wrote, for the list key kinds', () => {
    expect(decodeCursor(encodeCursor([1_700_000_000_000, USER]), ['time', 'uuid'])).toEqual([
      1_700_000_000_000,
      USER,
    ]);
    expect(decodeCursor(encodeCursor([42]), ['id'])).toEqual([42]);
    expect(decodeCursor(encodeCursor([-5, 2_147_483_648]), ['time', 'id'])).toEqual([
      -5, 2_147_483_648,
    ]);
  });

  it.each([
    ['Infinity (written as null)', [Infinity, USER], ['time', 'uuid']],
    ['a fraction', [1.5, USER], ['time', 'uuid']],
    ['text where an integer belongs', ['a', USER], ['time', 'uuid']],
    ['a number where text belongs', [1, 2], ['time', 'uuid']],
    ['text that is not a uuid', [1, 'a-user'], ['time', 'uuid']],
    ['a NUL in the text', [1, `${USER.slice(0, -1)}\u0000`], ['time', 'uuid']],
    ['a row id past 2^53 (no longer exact as a number)', [1, 2 ** 53], ['time', 'id']],
    ['a negative row id', [-1], ['id']],
    ['too few values', [1], ['time', 'uuid']],
    ['too many values', [1, 2], ['id']],
  ] as const)('refuses %s with 400', (_label, key, shape) => {
    expect(() => decodeCursor(encodeCursor([...key]), shape)).toThrow(BadRequestException);
  });

  it('refuses text that is not a cursor at all', () => {
    expect(() => decodeCursor('%%%', ['id'])).toThrow(
      'cursor is not a cursor returned by this list',
    );
  });
});
