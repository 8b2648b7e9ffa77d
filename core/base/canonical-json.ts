/**
 * Canonical JSON: object keys sorted, `undefined` members dropped, no whitespace. Equal values
 * give equal text, which makes it the input of cache keys and of echo's `reply: request`.
 * @module
 */

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : normalise(v)));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = normalise(v);
    }
    return out;
  }
  return value;
}

/** Serialises `value` canonically (sorted keys, no `undefined`, no whitespace). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(normalise(value));
}
