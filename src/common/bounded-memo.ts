/**
 * `compute` remembered for up to `max` keys; emptied when full rather than
 * evicting one by one, so a lookup stays one Map get. For pure functions on
 * hot paths whose arguments repeat (the times of a session, a client's
 * address). `compute` must not return undefined.
 */
export function boundedMemo<K, V>(compute: (key: K) => V, max: number): (key: K) => V {
  const remembered = new Map<K, V>();
  return (key) => {
    let value = remembered.get(key);
    if (value === undefined) {
      if (remembered.size >= max) remembered.clear();
      value = compute(key);
      remembered.set(key, value);
    }
    return value;
  };
}
