import { sleep } from './auth';

/**
 * Reads until `done` holds, for about a second, and returns the last read
 * (the caller's assertions then say what was missing). For what the service
 * writes after it answered, such as audit entries (application events).
 */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean) {
  let value = await read();
  for (let i = 0; i < 50 && !done(value); i++) {
    await sleep(20);
    value = await read();
  }
  return value;
}
