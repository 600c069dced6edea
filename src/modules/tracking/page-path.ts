import { MAX_PATH_LENGTH } from './dto/tracking.dto.js';

const BASE = 'http://placeholder.invalid';

/** Only web pages have paths worth counting; other schemes' "paths" hold addresses or code. */
const WEB_SCHEMES = new Set(['http:', 'https:']);

/** Why `normalizePagePath` found no path (after the field name `page`). */
export const NOT_A_PAGE = `must be a path or an http(s) URL, its path at most ${MAX_PATH_LENGTH} characters once percent-encoded`;

/**
 * The normalised path of a page or URL: no scheme/host, no query string or
 * fragment (they often carry personal data), no trailing slash except for
 * the root, non-ASCII percent-encoded. Null when it is not a usable path:
 * blank, or a URL of another scheme than http(s) (`mailto:alice@example.com`
 * would otherwise be stored as the "path" `alice@example.com`), or a path
 * over MAX_PATH_LENGTH once percent-encoded (non-ASCII triples in length).
 */
export function normalizePagePath(page: string): string | null {
  const trimmed = page.trim();
  if (trimmed === '') return null;
  let url: URL;
  try {
    // A path is parsed as one: `//products` relative to a base would be a host name.
    url = trimmed.startsWith('/') ? new URL(`${BASE}${trimmed}`) : new URL(trimmed, BASE);
  } catch {
    return null;
  }
  if (!WEB_SCHEMES.has(url.protocol)) return null;
  let path = url.pathname;
  while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path.length <= MAX_PATH_LENGTH ? path : null;
}

/**
 * Part of a path written as stored paths are: percent-encoded by the same
 * URL parser normalizePagePath uses (`/café` -> `/caf%C3%A9`, a space ->
 * `%20`), for the text of wildcard page patterns, which are not whole paths.
 * `?` and `#` are kept as characters of the path (encoded), not cut off as
 * a query or fragment.
 */
export function encodePathText(text: string): string {
  // Segment by segment, each between two letters: `.` and `..` stay text, not steps up.
  return text
    .replace(/\\/g, '/')
    .split('/')
    .map((segment) => {
      const escaped = segment.replace(/\?/g, '%3F').replace(/#/g, '%23');
      return new URL(`${BASE}/a${escaped}a`).pathname.slice(2, -1);
    })
    .join('/');
}

/** A referrer reduced to origin + path (no query string); null unless it is a web URL or path. */
export function normalizeReferrer(referrer: string): string | null {
  let url: URL;
  try {
    url = new URL(referrer);
  } catch {
    return normalizePagePath(referrer);
  }
  return WEB_SCHEMES.has(url.protocol) ? `${url.origin}${url.pathname}` : null;
}
