import { IANAZone } from 'luxon';

export type PreferenceValue = string | boolean;

export interface PreferenceDefinition {
  /** Category shown in the API docs: appearance, locale, notifications, privacy. */
  category: string;
  default: PreferenceValue;
  /** Null when valid, else why not. */
  check(value: unknown, supportedLanguages: readonly string[]): string | null;
}

const oneOf =
  (...values: string[]) =>
  (value: unknown) =>
    typeof value === 'string' && values.includes(value)
      ? null
      : `must be one of ${values.join(', ')}`;
const boolean = (value: unknown) => (typeof value === 'boolean' ? null : 'must be a boolean');

/**
 * Every preference, by dotted key, with its type and default (the seed's
 * values). A user's stored settings override these leaf by leaf.
 */
export const PREFERENCES: Record<string, PreferenceDefinition> = {
  theme: { category: 'appearance', default: 'light', check: oneOf('light', 'dark', 'system') },
  language: {
    category: 'locale',
    default: 'en',
    check: (value, supported) =>
      typeof value === 'string' && supported.includes(value)
        ? null
        : `must be one of the supported languages: ${supported.join(', ')}`,
  },
  timezone: {
    category: 'locale',
    default: 'UTC',
    check: (value) => {
      if (typeof value !== 'string' || value.length > 64 || !IANAZone.isValidZone(value)) {
        return 'must be an IANA time zone such as Europe/Berlin';
      }
      // Zones are found regardless of case, but clients read the stored value with their own
      // zone databases, which are case-sensitive: "Europe/berlin" must be written as it is
      // named. Aliases stay as given (ICU would turn Asia/Kolkata into Asia/Calcutta).
      const named = new Intl.DateTimeFormat('en', { timeZone: value }).resolvedOptions().timeZone;
      return named !== value && named.toLowerCase() === value.toLowerCase()
        ? `must be written as the zone is named: "${named}"`
        : null;
    },
  },
  'notifications.email': { category: 'notifications', default: true, check: boolean },
  'notifications.push': { category: 'notifications', default: false, check: boolean },
  'notifications.sms': { category: 'notifications', default: false, check: boolean },
  'privacy.profile_public': { category: 'privacy', default: false, check: boolean },
  'privacy.show_activity': { category: 'privacy', default: true, check: boolean },
  'privacy.allow_analytics': { category: 'privacy', default: true, check: boolean },
};

export const PREFERENCE_KEYS = Object.keys(PREFERENCES);

/**
 * The definition of `key`, if it is a preference. Own keys only: a plain
 * `PREFERENCES[key]` would also find `constructor` or `toString` on the
 * object's prototype, and a request naming them would crash the check.
 */
export function preferenceDefinition(key: string): PreferenceDefinition | undefined {
  return Object.hasOwn(PREFERENCES, key) ? PREFERENCES[key] : undefined;
}

export const GROUPS = [
  ...new Set(PREFERENCE_KEYS.filter((k) => k.includes('.')).map((k) => k.split('.')[0])),
];

/** Flat `{ 'a.b': v }` to nested `{ a: { b: v } }`. */
export function nest(flat: Record<string, unknown>): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const [head, leaf] = key.split('.') as [string, string | undefined];
    if (leaf === undefined) document[head] = value;
    else
      document[head] = {
        ...(document[head] ?? {}),
        [leaf]: value,
      };
  }
  return document;
}

/**
 * The default of `key` under the configured languages. `language` defaults
 * to `en`, or to the first of SUPPORTED_LANGUAGES when `en` is not among
 * them: a default the API would refuse to store could not be PUT back.
 */
export function defaultValue(key: string, supportedLanguages: readonly string[]): PreferenceValue {
  if (key === 'language' && !supportedLanguages.includes('en')) return supportedLanguages[0];
  return PREFERENCES[key].default;
}

/**
 * Defaults with `stored` settings on top, nested. A stored value the
 * configuration no longer accepts (a language since dropped from
 * SUPPORTED_LANGUAGES) reads as the default; its row stays, and counts
 * again if the language comes back.
 */
export function effectiveDocument(
  stored: Record<string, unknown>,
  supportedLanguages: readonly string[],
): Record<string, unknown> {
  return nest(
    Object.fromEntries(
      PREFERENCE_KEYS.map((k) => [
        k,
        Object.hasOwn(stored, k) && PREFERENCES[k].check(stored[k], supportedLanguages) === null
          ? stored[k]
          : defaultValue(k, supportedLanguages),
      ]),
    ),
  );
}

export function defaultsDocument(supportedLanguages: readonly string[]): Record<string, unknown> {
  return effectiveDocument({}, supportedLanguages);
}
