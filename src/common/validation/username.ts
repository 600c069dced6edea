/**
 * Usernames: 3-64 characters of `[A-Za-z0-9._-]`, unique regardless of case.
 * Shared by registration and the ADMIN_USERNAME setting, so the bootstrap
 * admin is always an account that can log in.
 */
export const USERNAME_PATTERN = /^[A-Za-z0-9._-]{3,64}$/;

export const USERNAME_RULE = 'must be 3-64 characters of A-Z, a-z, 0-9, ".", "_" or "-"';
