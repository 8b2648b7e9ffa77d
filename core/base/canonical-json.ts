/**
 * Canonical JSON: object keys sorted, `undefined` members dropped, no whitespace. Equal values
 * give equal text, which makes it the input of cache keys and of echo's `reply: request`.
 * @module
 */

/** The old recipe: a sorted copy of the value, then `JSON.stringify`. Defines the text. */
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

/**
 * Plain data (what JSON, YAML and CSV give: plain objects, arrays, strings, finite numbers,
 * booleans, null) written straight to text, without the sorted copy: every sync row is keyed, and
 * the copy was most of a key's cost. Undefined for anything else (a class instance, a `toJSON`,
 * a function, a bigint), which the old recipe then writes, so the text is the same either way.
 */
function plain(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let text = "[";
        for (let i = 0; i < value.length; i++) {
          const item = value[i] === undefined ? "null" : plain(value[i]);
          if (item === undefined) return undefined;
          text += i === 0 ? item : "," + item;
        }
        return text + "]";
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return undefined;
      const keys = sortedKeys(value);
      let text = "{";
      for (const key of keys) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        // The old recipe's copy took a "__proto__" member as its prototype: let it write one.
        if (key === "__proto__") return undefined;
        const member = plain(v);
        if (member === undefined) return undefined;
        text += (text.length === 1 ? "" : ",") + JSON.stringify(key) + ":" + member;
      }
      return text + "}";
    }
    default:
      return undefined;
  }
}

/**
 * An object's keys in the order the old recipe wrote them: sorted, except that keys which are
 * array indices ("0", "10") come first in numeric order, as a JavaScript object holds them.
 */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  if (keys.length < 2) return keys;
  keys.sort();
  if (!keys.some(isIndexLike)) return keys;
  const indices = keys.filter(isArrayIndex).sort((a, b) => Number(a) - Number(b));
  return indices.length ? [...indices, ...keys.filter((k) => !isArrayIndex(k))] : keys;
}

/** Starts with a digit: may be an array index (rare in keys, so checked first and cheaply). */
const isIndexLike = (key: string) => key.charCodeAt(0) >= 48 && key.charCodeAt(0) <= 57;

/** A canonical array index: an integer below 2³² − 1 written without leading zeros. */
const isArrayIndex = (key: string) => /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 4_294_967_295;

/** Serialises `value` canonically (sorted keys, no `undefined`, no whitespace). */
export function canonicalJson(value: unknown): string {
  return plain(value) ?? JSON.stringify(normalise(value));
}
