import { normalizePagePath, normalizeReferrer } from './page-path';

describe('normalizePagePath', () => {
  it.each([
    ['/pricing', '/pricing'],
    ['/pricing/', '/pricing'],
    ['/pricing?plan=pro#top', '/pricing'],
    ['https://app.example.com/docs/intro/?q=1', '/docs/intro'],
    ['/', '/'],
    ['pricing', '/pricing'],
    ['/caf\u00e9', '/caf%C3%A9'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizePagePath(input)).toBe(expected);
  });

  it('rejects a path that is too long once encoded', () => {
    expect(normalizePagePath('/' + '\u00e9'.repeat(400))).toBeNull();
  });

  it('keeps only origin and path of a referrer', () => {
    expect(normalizeReferrer('https://news.example/item?id=42&email=a@b.c')).toBe(
      'https://news.example/item',
    );
  });
});
