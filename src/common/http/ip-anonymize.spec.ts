import { anonymizeIp } from './ip-anonymize';

describe('anonymizeIp', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0'],
    ['::ffff:203.0.113.77', '203.0.113.0'],
    ['2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:85a3::'],
    ['2001:db8::1', '2001:db8::'],
    ['::1', '::'],
    ['fe80::1:2:3:4', 'fe80::'],
    ['not-an-ip', null],
    [null, null],
  ])('turns %s into %s', (input, expected) => {
    expect(anonymizeIp(input)).toBe(expected);
  });
});
