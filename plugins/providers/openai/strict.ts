/**
 * Whether OpenAI's strict mode (Structured Outputs, `strict: true`) accepts an answer schema, and
 * if not, why. Strict mode takes only a documented subset of JSON Schema (OpenAI's Structured
 * Outputs guide, "Supported schemas"): the root is an object (not `anyOf`); every object closes
 * its properties (`additionalProperties: false`) and requires all of them; the keywords are
 * `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `anyOf`
 * (not at the root), `$defs`/`$ref` (recursion included), string `pattern`/`format`, number
 * `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`/`multipleOf`, array
 * `minItems`/`maxItems`, plus `title`/`description`; and the schema stays within its size limits.
 * Anything outside that subset makes the job non-strict: the schema still guides the model and
 * Loom checks every answer against it.
 *
 * Sources: the guide's lists and limits as transcribed by jsonschemaprofiles.unitvectorylabs.com
 * ("OpenAI Structured Outputs Profile", 2026-02 baseline), and the keywords the openai SDK's
 * strict transform refuses (src/lib/transform.ts, openai 7.57.0).
 * @module
 */

/** The verdict on one schema: strict or not, and each reason it cannot be. */
export interface StrictVerdict {
  readonly strict: boolean;
  /** Why strict mode would refuse the schema, each naming a place: `allOf at /properties/x`. */
  readonly reasons: readonly string[];
}

/**
 * Keywords of the strict subset, on any node (which type each belongs to is not checked: a
 * stray one only restricts what the model may answer). `definitions` is the older name of
 * `$defs`, walked the same way by the SDK's transform.
 */
const SUPPORTED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "anyOf",
  "$ref",
  "$defs",
  "definitions",
  "title",
  "description",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minItems",
  "maxItems",
  // unverified: not listed in the guide, but the openai SDK's own strict-schema transform keeps
  // these annotations as they are (src/lib/transform.ts), so the API is taken to accept them.
  "$comment",
  "examples",
]);

/**
 * String formats strict mode supports: the guide's list, as independent transcriptions of it
 * agree. unverified: not read on OpenAI's own page (not in the stored sources).
 */
const FORMATS = new Set([
  "date-time",
  "time",
  "date",
  "duration",
  "email",
  "hostname",
  "ipv4",
  "ipv6",
  "uuid",
]);

/** The guide's size limits. */
export const STRICT_LIMITS = {
  /** Object properties in the whole schema. */
  properties: 5000,
  /** Levels of nested objects. */
  nesting: 10,
  /** Enum values in the whole schema. */
  enumValues: 1000,
  /** Characters of all property names, definition names, enum and const values together. */
  stringLength: 120_000,
  /** An enum of strings with more than this many values … */
  largeEnum: 250,
  /** … may total at most this many characters. */
  largeEnumLength: 15_000,
} as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON Pointer segment (`~` and `/` escaped). */
function segment(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function pointer(path: readonly string[]): string {
  return path.length ? `/${path.map(segment).join("/")}` : "the root";
}

function typesOf(node: Record<string, unknown>): string[] {
  if (typeof node.type === "string") return [node.type];
  if (Array.isArray(node.type)) return node.type.filter((t): t is string => typeof t === "string");
  return isObject(node.properties) ? ["object"] : [];
}

/**
 * The schema as sent: without the root's `$schema` and `$id`, which only name the dialect and the
 * document (the openai SDK's own strict transform drops them too, src/lib/transform.ts), so a
 * schema generated with them (zod-to-json-schema adds `$schema`) can still go strict. The answer
 * is checked against the job's schema as given.
 */
export function sentSchema(
  schema: Readonly<Record<string, unknown>>,
): Readonly<Record<string, unknown>> {
  if (schema.$schema === undefined && schema.$id === undefined) return schema;
  const { $schema: _dialect, $id: _id, ...rest } = schema;
  return rest;
}

/** Judges a schema against the strict subset. Every reason is collected, not just the first. */
export function strictVerdict(schema: Readonly<Record<string, unknown>>): StrictVerdict {
  const reasons: string[] = [];
  const totals = { properties: 0, enumValues: 0, stringLength: 0 };
  const rootTypes = typesOf(schema);
  if (schema.anyOf !== undefined) reasons.push("anyOf at the root (the root must be an object)");
  else if (!(rootTypes.length === 1 && rootTypes[0] === "object")) {
    reasons.push("the root is not an object");
  }

  const walk = (node: unknown, path: string[], objectDepth: number): void => {
    if (!isObject(node)) {
      if (typeof node === "boolean") reasons.push(`a boolean schema at ${pointer(path)}`);
      return;
    }
    for (const key of Object.keys(node)) {
      if (!SUPPORTED.has(key)) reasons.push(`${key} at ${pointer(path)}`);
    }
    if (typeof node.format === "string" && !FORMATS.has(node.format)) {
      reasons.push(`format "${node.format}" at ${pointer(path)}`);
    }
    let depth = objectDepth;
    if (typesOf(node).includes("object") && node.$ref === undefined) {
      depth += 1;
      if (depth === STRICT_LIMITS.nesting + 1) {
        reasons.push(
          `more than ${STRICT_LIMITS.nesting} levels of nested objects at ${pointer(path)}`,
        );
      }
      const props = isObject(node.properties) ? node.properties : {};
      if (node.additionalProperties !== false) {
        reasons.push(`additionalProperties is not false at ${pointer(path)}`);
      }
      const required = Array.isArray(node.required) ? node.required : [];
      const optional = Object.keys(props).filter((k) => !required.includes(k));
      if (optional.length) {
        reasons.push(`optional properties (${optional.join(", ")}) at ${pointer(path)}`);
      }
      for (const [key, sub] of Object.entries(props)) {
        totals.properties += 1;
        totals.stringLength += key.length;
        walk(sub, [...path, "properties", key], depth);
      }
    }
    if (Array.isArray(node.enum)) {
      totals.enumValues += node.enum.length;
      const strings = node.enum.filter((v): v is string => typeof v === "string");
      const length = strings.reduce((n, s) => n + s.length, 0);
      totals.stringLength += length;
      if (strings.length > STRICT_LIMITS.largeEnum && length > STRICT_LIMITS.largeEnumLength) {
        reasons.push(
          `an enum of ${strings.length} strings totalling ${length} characters at ${pointer(path)}`,
        );
      }
    }
    if (typeof node.const === "string") totals.stringLength += node.const.length;
    if (Array.isArray(node.items)) reasons.push(`items as a list (a tuple) at ${pointer(path)}`);
    else if (node.items !== undefined) walk(node.items, [...path, "items"], depth);
    if (Array.isArray(node.anyOf)) {
      node.anyOf.forEach((sub, i) => walk(sub, [...path, "anyOf", String(i)], depth));
    }
    for (const key of ["$defs", "definitions"]) {
      const defs = node[key];
      if (!isObject(defs)) continue;
      for (const [name, sub] of Object.entries(defs)) {
        totals.stringLength += name.length;
        walk(sub, [...path, key, name], depth);
      }
    }
  };
  walk(schema, [], 0);
  if (totals.properties > STRICT_LIMITS.properties) {
    reasons.push(`${totals.properties} object properties (at most ${STRICT_LIMITS.properties})`);
  }
  if (totals.enumValues > STRICT_LIMITS.enumValues) {
    reasons.push(`${totals.enumValues} enum values (at most ${STRICT_LIMITS.enumValues})`);
  }
  if (totals.stringLength > STRICT_LIMITS.stringLength) {
    reasons.push(
      `${totals.stringLength} characters of names and enum values (at most ${STRICT_LIMITS.stringLength})`,
    );
  }
  return { strict: reasons.length === 0, reasons };
}

/** The sentence `loom plan` and a run show: which mode the schema gets, and why. */
export function strictNote(verdict: StrictVerdict): string {
  if (verdict.strict) {
    return "the answer schema is sent in strict mode: OpenAI guarantees every answer matches it";
  }
  const shown = verdict.reasons.slice(0, 3).join("; ");
  const more = verdict.reasons.length > 3 ? `; and ${verdict.reasons.length - 3} more` : "";
  return `the answer schema is sent without strict mode, as guidance (Loom checks each answer against it), because strict mode does not accept: ${shown}${more}`;
}
