import { BadRequestException } from '@nestjs/common';
import { decodeCursor, encodeCursor } from './pagination';

describe('decodeCursor', () => {
  it('reads back what encodeCursor wrote, for the list key kinds', () => {
    expect(
      decodeCursor(encodeCursor([1_700_000_000_000, 'a-uuid']), ['integer', 'string']),
    ).toEqual([1_700_000_000_000, 'a-uuid']);
    expect(decodeCursor(encodeCursor([42]), ['integer'])).toEqual([42]);
  });

  it.each([
    ['Infinity (written as null)', [Infinity, 'x'], ['integer', 'string']],
    ['a fraction', [1.5, 'x'], ['integer', 'string']],
    ['text where an integer belongs', ['a', 'x'], ['integer', 'string']],
    ['a number where text belongs', [1, 2], ['integer', 'string']],
    ['too few values', [1], ['integer', 'string']],
    ['too many values', [1, 2], ['integer']],
  ] as const)('refuses %s with 400', (_label, key, shape) => {
    expect(() => decodeCursor(encodeCursor([...key]), shape)).toThrow(BadRequestException);
  });

  it('refuses text that is not a cursor at all', () => {
    expect(() => decodeCursor('%%%', ['integer'])).toThrow(
      'cursor is not a cursor returned by this list',
    );
  });
});
