import { CachedFlags } from './cached-flags';

describe('CachedFlags', () => {
  it('answers from the cache within the TTL and loads again after it', async () => {
    let stored = true;
    let loads = 0;
    const flags = new CachedFlags(50, () => {
      loads += 1;
      return Promise.resolve(stored);
    });
    expect(await flags.get('u')).toBe(true);
    stored = false;
    expect(flags.get('u')).toBe(true); // cached, synchronous
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await flags.get('u')).toBe(false);
    expect(loads).toBe(2);
  });

  it('does not cache a load that was reading when the value changed', async () => {
    let release: (value: boolean) => void = () => undefined;
    let loads = 0;
    const flags = new CachedFlags(60_000, () => {
      loads += 1;
      return loads === 1
        ? new Promise<boolean>((resolve) => (release = resolve))
        : Promise.resolve(false);
    });
    const inFlight = flags.get('u'); // reads the old value...
    flags.invalidate('u'); // ...while a change commits
    release(true);
    expect(await inFlight).toBe(true); // its caller gets what it read
    expect(await flags.get('u')).toBe(false); // but it was not cached
    expect(loads).toBe(2);
  });
});
