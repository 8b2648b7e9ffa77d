/**
 * A deterministic value that conforms to a JSON Schema, shared by every provider's structured
 * output (OpenAI `response_format` / `text.format`, Anthropic `output_config.format`, Gemini
 * `responseJsonSchema` / `responseSchema`). The value is built around the plain-text answer, so
 * structured replies stay checkable row by row:
 *
 * - a free string is the answer text (`[<model>] <prompt>`), trimmed to `maxLength` and padded
 *   with `.` to `minLength`; a string with a known `format` gets a fixed value of that format
 *   (`date-time`, `date`, `time`, `email`, `uri`/`url`, `uuid`, `hostname`, `ipv4`, `ipv6`);
 * - an integer or number is the answer's token count, moved into `minimum` / `maximum` (and the
 *   exclusive bounds) when it falls outside them;
 * - a boolean is `true`, `null` is `null`;
 * - `const` gives its value, `enum` its first member;
 * - `anyOf` / `oneOf` take their first non-null option, `allOf` merges its object members;
 * - an array holds `max(1, minItems)` items (at most 1000; none when `maxItems` is 0);
 * - an object has every property, in `propertyOrdering` (Gemini) order when given, else in
 *   schema order; `$ref` to `#`, `#/$defs/…` or `#/definitions/…` is followed.
 *
 * Type names are read case-insensitively, so Gemini's OpenAPI-style `OBJECT`, `STRING`, … work
 * as well as JSON Schema's `object`, `string`, …; a list of types (`["string", "null"]`) takes its
 * first non-null one, and Gemini's `nullable` changes nothing (a value is always given).
 * `pattern` is not honoured.
 * @module
 */
import { countTokens } from "./answers.ts";

type Schema = Record<string, unknown>;

/** Whether a value is a plain JSON object. */
function isObject(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The schema a `$ref` points at (only local references), or the schema itself. */
export function resolveRef(schema: Schema, root: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== "string") return schema;
  const match = ref.match(/^#\/(\$defs|definitions)\/(.+)$/);
  const target = match
    ? (root[match[1]] as Record<string, unknown> | undefined)?.[match[2]]
    : ref === "#"
    ? root
    : undefined;
  return isObject(target) ? target : {};
}

/**
 * The (lower-case) type a schema describes: its `type` (the first non-null one of a list), else
 * `object` when it has `properties`, `array` when it has `items`, else undefined.
 */
export function schemaType(schema: Schema): string | undefined {
  const t = schema.type;
  if (Array.isArray(t)) {
    const names = t.filter((x): x is string => typeof x === "string").map((x) => x.toLowerCase());
    return names.find((x) => x !== "null") ?? names[0];
  }
  if (typeof t === "string" && t.toUpperCase() !== "TYPE_UNSPECIFIED") return t.toLowerCase();
  if (isObject(schema.properties)) return "object";
  if (schema.items !== undefined) return "array";
  return undefined;
}

/** A number from a schema keyword (Gemini's int64 fields may arrive as strings). */
function num(value: unknown): number | undefined {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) ? n : undefined;
}

/** Fixed values for the string formats a validator may check. */
const FORMATS: Record<string, string> = {
  "date-time": "2026-01-01T00:00:00Z",
  date: "2026-01-01",
  time: "00:00:00Z",
  email: "answer@example.com",
  "idn-email": "answer@example.com",
  uri: "https://example.com/answer",
  url: "https://example.com/answer",
  "uri-reference": "https://example.com/answer",
  iri: "https://example.com/answer",
  uuid: "00000000-0000-4000-8000-000000000000",
  hostname: "example.com",
  ipv4: "192.0.2.1",
  ipv6: "2001:db8::1",
  duration: "P1D",
};

function sampleString(s: Schema, text: string): string {
  const format = typeof s.format === "string" ? FORMATS[s.format] : undefined;
  let out = format ?? text;
  const max = num(s.maxLength);
  const min = num(s.minLength);
  if (max !== undefined && out.length > max) out = out.slice(0, Math.max(0, max));
  if (min !== undefined && out.length < min) out = out.padEnd(min, ".");
  return out;
}

function sampleNumber(s: Schema, text: string, integer: boolean): number {
  let n = countTokens(text);
  const min = num(s.minimum);
  const max = num(s.maximum);
  const exMin = typeof s.exclusiveMinimum === "boolean"
    ? (s.exclusiveMinimum ? min : undefined)
    : num(s.exclusiveMinimum);
  const exMax = typeof s.exclusiveMaximum === "boolean"
    ? (s.exclusiveMaximum ? max : undefined)
    : num(s.exclusiveMaximum);
  if (min !== undefined && n < min) n = integer ? Math.ceil(min) : min;
  if (exMin !== undefined && n <= exMin) n = Math.floor(exMin) + 1;
  if (max !== undefined && n > max) n = integer ? Math.floor(max) : max;
  if (exMax !== undefined && n >= exMax) n = Math.ceil(exMax) - 1;
  return n;
}

/** `allOf` members merged into one schema (properties and required lists joined, first type kept). */
function mergeAll(options: unknown[], root: Schema): Schema {
  const merged: Schema = {};
  const properties: Schema = {};
  for (const option of options) {
    if (!isObject(option)) continue;
    const s = resolveRef(option, root);
    for (const [key, value] of Object.entries(s)) if (!(key in merged)) merged[key] = value;
    if (isObject(s.properties)) Object.assign(properties, s.properties);
  }
  if (Object.keys(properties).length) merged.properties = properties;
  return merged;
}

/**
 * A value conforming to `schema`, whose free strings carry `text` (see the module comment).
 * `root` is the schema `$ref`s resolve against (default: `schema` itself).
 */
export function sampleValue(schema: unknown, text: string, root?: Schema, depth = 0): unknown {
  if (!isObject(schema) || depth > 16) return text;
  const top = root ?? schema;
  const s = resolveRef(schema, top);
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if (Array.isArray(s.allOf) && s.allOf.length) {
    const { allOf: _, ...rest } = s;
    return sampleValue(mergeAll([rest, ...s.allOf], top), text, top, depth + 1);
  }
  for (const key of ["anyOf", "oneOf"]) {
    const options = s[key];
    if (Array.isArray(options) && options.length) {
      const first = options.find((o) => !(isObject(o) && schemaType(o) === "null")) ?? options[0];
      return sampleValue(first, text, top, depth + 1);
    }
  }
  switch (schemaType(s)) {
    case "object": {
      const out: Record<string, unknown> = {};
      const props = isObject(s.properties) ? s.properties : {};
      const order = Array.isArray(s.propertyOrdering)
        ? s.propertyOrdering.filter((k): k is string => typeof k === "string" && k in props)
        : [];
      const names = [...order, ...Object.keys(props).filter((k) => !order.includes(k))];
      for (const name of names) out[name] = sampleValue(props[name], text, top, depth + 1);
      return out;
    }
    case "array": {
      const min = Math.min(Math.max(1, num(s.minItems) ?? 1), 1000);
      const length = Math.min(min, num(s.maxItems) ?? Number.POSITIVE_INFINITY);
      return Array.from(
        { length: Math.max(0, length) },
        () => sampleValue(s.items, text, top, depth + 1),
      );
    }
    case "integer":
      return sampleNumber(s, text, true);
    case "number":
      return sampleNumber(s, text, false);
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      return sampleString(s, text);
  }
}
