import { encodePathText, normalizePagePath, normalizeReferrer } from './page-path';

describe('normalizePagePath', () => {
  it.each([
    ['/pricing', '/pricing'],
    ['/pricing/', '/pricing'],
    ['/pricing?plan=pro#top', '/pricing'],
    ['https://app.example.com/docs/intro/?q=1', '/docs/intro'],
    ['/', '/'],
    ['pricing', '/pricing'],
    ['/caf\u00e9', '/caf%C3%A9'],
    ['//products', '//products'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizePagePath(input)).toBe(expected);
  });

  it.each(['javascript:alert(1)', 'mailto:alice@example.com', 'data:text/html,hi', '   ', ''])(
    'rejects %j (not a web page)',
    (input) => {
      expect(normalizePagePath(input)).toBeNull();
    },
  );

  it('rejects a path that is too long once encoded', () => {
    expect(normalizePagePath('/' + '\u00e9'.repeat(400))).toBeNull();
  });

  it('keeps only origin and path of a referrer', () => {
    expect(normalizeReferrer('https://news.example/item?id=42&email=a@b.c')).toBe(
      'https://news.example/item',
    );
    expect(normalizeReferrer('/from/inside?x=1')).toBe('/from/inside');
    expect(normalizeReferrer('mailto:alice@example.com')).toBeNull();
    expect(normalizeReferrer('javascript:alert(1)')).toBeNull();
  });
});

describe('encodePathText', () => {
  it.each([
    ['/caf\u00e9/', '/caf%C3%A9/'],
    ['my page', 'my%20page'],
    ['page/', 'page/'],
    ['%C3%A9', '%C3%A9'],
    ['a?b#c', 'a%3Fb%23c'],
    ['a\\b', 'a/b'],
    ['/../', '/../'],
    ['/./x', '/./x'],
  ])('%j -> %j (as a stored path would hold it)', (input, expected) => {
    expect(encodePathText(input)).toBe(expected);
  });
});
