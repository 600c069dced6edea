import { registerDecorator, ValidationOptions } from 'class-validator';

/** Depth of a JSON value: a scalar is 0, `{}` or `[]` is 1, `{"a":{}}` is 2. */
export function jsonDepth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce<number>((max, child) => Math.max(max, jsonDepth(child)), 0);
}

/**
 * A plain JSON object whose serialised form is at most `maxBytes` UTF-8
 * bytes and whose nesting is at most `maxDepth` levels.
 */
export function IsBoundedJsonObject(
  limits: { maxBytes: number; maxDepth: number },
  options?: ValidationOptions,
): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isBoundedJsonObject',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: `$property must be a JSON object of at most ${limits.maxBytes} bytes and ${limits.maxDepth} levels`,
        ...options,
      },
      validator: {
        validate(value: unknown) {
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
          if (jsonDepth(value) > limits.maxDepth) return false;
          return Buffer.byteLength(JSON.stringify(value), 'utf8') <= limits.maxBytes;
        },
      },
    });
  };
}
