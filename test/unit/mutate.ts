/** Helpers of the fast-path property tests: every place in a value, and a copy with one changed. */

/** Every place in `value`: the path (keys and indexes) to each object, array and leaf. */
export function places(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value))
      out.push(...places(v, [...at, Array.isArray(value) ? Number(k) : k]));
  }
  return out;
}

/**
 * A copy of `value` with the place `path` replaced by `replacement`, or, when `path` is an
 * object or array and `add` is set, with `replacement` added to it (under `extraKey`).
 */
export function mutate(
  value: unknown,
  path: (string | number)[],
  replacement: unknown,
  extraKey: string,
  add: boolean,
): unknown {
  const [step, ...rest] = path;
  if (step === undefined) {
    if (add && Array.isArray(value)) return [...value, replacement];
    if (add && typeof value === 'object' && value !== null) return { ...value, [extraKey]: replacement };
    return replacement;
  }
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  copy[step] = mutate(copy[step], rest, replacement, extraKey, add);
  return copy;
}
