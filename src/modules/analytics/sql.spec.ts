import { ratio, shareOf } from './sql';

describe('ratio and shareOf', () => {
  it('divides, and gives null for a zero divisor', () => {
    expect([ratio(1, 4), ratio(0, 3), ratio(2, 0)]).toEqual([0.25, 0, null]);
  });

  it('caps a share at 1 when the part was counted after the whole grew apart from it', () => {
    expect([shareOf(3, 4), shareOf(5, 4), shareOf(4, 4), shareOf(1, 0)]).toEqual([
      0.75,
      1,
      1,
      null,
    ]);
  });
});
