/**
 * Per-key yes/no answers cached for `ttlMs`, for checks on the tracking hot
 * path: synchronous while cached, one load otherwise. The TTL bounds how
 * long another app instance may keep an old answer; on this instance a
 * change calls `invalidate` and takes effect on the next check.
 *
 * A load that was already reading when a change committed would otherwise
 * put the old answer back into the cache for a whole TTL: every
 * invalidation moves an epoch on, and a load that started in an earlier
 * epoch answers its caller but is not cached.
 */
export class CachedFlags {
  private readonly entries = new Map<string, { value: boolean; at: number }>();
  private epoch = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly load: (key: string) => Promise<boolean>,
  ) {}

  get(key: string): boolean | Promise<boolean> {
    const cached = this.entries.get(key);
    if (cached && Date.now() - cached.at < this.ttlMs) return cached.value;
    return this.fetch(key);
  }

  invalidate(key: string): void {
    this.epoch += 1;
    this.entries.delete(key);
  }

  private async fetch(key: string): Promise<boolean> {
    const epoch = this.epoch;
    const startedAt = Date.now();
    const value = await this.load(key);
    if (epoch === this.epoch) this.entries.set(key, { value, at: startedAt });
    return value;
  }
}
