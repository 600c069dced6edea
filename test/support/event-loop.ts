/**
 * Whether the event loop got a turn (a macrotask ran) before `job` settled.
 * A batched job that never yields holds the loop, and every request with it,
 * until it ends: on better-sqlite3 each awaited query resolves as a microtask.
 */
export async function turnedBefore(job: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void job.then(
    () => (settled = true),
    () => (settled = true),
  );
  return new Promise((resolve) => setImmediate(() => resolve(!settled)));
}
