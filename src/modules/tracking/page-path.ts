import { MAX_PATH_LENGTH } from './dto/tracking.dto.js';

const BASE = 'http://placeholder.invalid';

/**
 * The normalised path of a page or URL: no scheme/host, no query string or
 * fragment (they often carry personal data), no trailing slash except for
 * the root, non-ASCII percent-encoded. Null when it is not a usable path.
 */
export function normalizePagePath(page: string): string | null {
  let url: URL;
  try {
    url = new URL(page.trim(), BASE);
  } catch {
    return null;
  }
  let path = url.pathname;
  while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path.length <= MAX_PATH_LENGTH ? path : null;
}

/** A referrer reduced to origin + path (no query string). */
export function normalizeReferrer(referrer: string): string | null {
  try {
    const url = new URL(referrer);
    return `${url.origin}${url.pathname}`;
  } catch {
    return normalizePagePath(referrer);
  }
}
