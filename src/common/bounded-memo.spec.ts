import { boundedMemo } from './bounded-memo';

describe('boundedMemo', () => {
  it('computes each key once while it is remembered, null answers included', () => {
    const computed: string[] = [];
    const memo = boundedMemo((key: string) => {
      computed.push(key);
      return key === 'none' ? null : key.toUpperCase();
    }, 3);
    expect([memo('a'), memo('b'), memo('a'), memo('none'), memo('none')]).toEqual([
      'A',
      'B',
      'A',
      null,
      null,
    ]);
    expect(computed).toEqual(['a', 'b', 'none']);
  });

  it('forgets everything once full, then remembers again', () => {
    const computed: number[] = [];
    const memo = boundedMemo((key: number) => {
      computed.push(key);
      return key * 2;
    }, 2);
    expect([memo(1), memo(2), memo(3), memo(1), memo(3)]).toEqual([2, 4, 6, 2, 6]);
    // 3 found the memo full (1, 2) and emptied it; 1 then had to be computed again, 3 not.
    expect(computed).toEqual([1, 2, 3, 1]);
  });
});
