/**
 * What the Messages API accepts as a structured-output schema (`output_config.format.schema`), so
 * the emulator refuses what the API refuses instead of taking any JSON Schema.
 *
 * The documented limits ("JSON Schema limitations" of the structured-outputs guide, and what
 * `@anthropic-ai/sdk`'s own schema transform keeps): the basic types, `enum` and `const` of
 * primitives only, `anyOf` and `allOf`, local `$ref` with `$defs` / `definitions`, `required`,
 * `additionalProperties: false` on every object, `minItems` of 0 or 1, and the string formats in
 * {@link STRING_FORMATS}. Recursive schemas, numeric, string-length and other array constraints,
 * external `$ref`s and non-primitive enums are not supported.
 *
 * Only the two object messages are the API's own wording (reported from live calls); the others
 * are unverified: the published sources name the limits, not the messages.
 * @module
 */
import { invalid, isObject } from "./shared.ts";

/** The string formats structured outputs support. */
export const STRING_FORMATS: ReadonlySet<string> = new Set([
  "date-time",
  "time",
  "date",
  "duration",
  "email",
  "hostname",
  "uri",
  "ipv4",
  "ipv6",
  "uuid",
]);

/** The JSON Schema types. */
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

/**
 * Keywords a schema may use. unverified: the API's exact list is not published; this is the
 * documented supported set, so `$schema`, `oneOf`, `pattern`, `default`, … are refused here
 * (`@anthropic-ai/sdk` never sends them: it drops `$schema` and moves the rest into `description`).
 */
const KEYWORDS = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "anyOf",
  "allOf",
  "$ref",
  "$defs",
  "definitions",
  "description",
  "title",
  "format",
  "minItems",
]);

/** Refuses (400 `invalid_request_error`) a structured-output schema the API would refuse. */
export function checkOutputSchema(schema: Record<string, unknown>, here: string): void {
  checkNode(schema, here, here);
  checkNotRecursive(schema, here);
}

/** `root` is the schema's own path: the API's object messages name it, not the nested node. */
function checkNode(node: unknown, here: string, root: string): void {
  if (!isObject(node)) throw invalid(`${here}: Input should be a valid dictionary`);
  for (const key of Object.keys(node)) {
    if (!KEYWORDS.has(key)) throw invalid(`${here}: JSON schema keyword '${key}' is not supported`);
  }
  const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type];
  for (const type of types) {
    if (typeof type !== "string" || !TYPES.has(type)) {
      throw invalid(`${here}.type: '${String(type)}' is not a valid JSON schema type`);
    }
  }
  // The two messages reported from the live API (ax-llm/ax#458, veryfront/veryfront-code#3918 for
  // a missing value, BerriAI/litellm#35808 for `true`), prefixed with the schema's path.
  if (types.includes("object") && node.additionalProperties === true) {
    throw invalid(
      `${root}: For 'object' type, 'additionalProperties: true' is not supported.\nPlease set 'additionalProperties' to false`,
    );
  }
  if (types.includes("object") && node.additionalProperties !== false) {
    throw invalid(
      `${root}: For 'object' type, 'additionalProperties' must be explicitly set to false`,
    );
  }
  if (node.minItems !== undefined && node.minItems !== 0 && node.minItems !== 1) {
    throw invalid(
      `${here}.minItems: only 0 and 1 are supported, got ${JSON.stringify(node.minItems)}`,
    );
  }
  if (node.format !== undefined && !STRING_FORMATS.has(node.format as string)) {
    throw invalid(`${here}.format: string format '${String(node.format)}' is not supported`);
  }
  for (const key of ["enum", "const"] as const) {
    const values = key === "enum" ? node.enum : [node.const];
    if (node[key] === undefined) continue;
    if (!Array.isArray(values) || values.some((v) => typeof v === "object" && v !== null)) {
      throw invalid(`${here}.${key}: only strings, numbers, booleans and null are supported`);
    }
  }
  if (typeof node.$ref === "string" && !node.$ref.startsWith("#")) {
    throw invalid(`${here}.$ref: external references are not supported`);
  }
  for (const [path, child] of children(node)) checkNode(child, `${here}.${path}`, root);
}

/** The subschemas of a schema node, with their paths. */
function children(node: Record<string, unknown>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const key of ["properties", "$defs", "definitions"]) {
    if (isObject(node[key])) {
      for (const [name, child] of Object.entries(node[key])) out.push([`${key}.${name}`, child]);
    }
  }
  for (const key of ["anyOf", "allOf"]) {
    if (Array.isArray(node[key])) node[key].forEach((child, i) => out.push([`${key}.${i}`, child]));
  }
  if (node.items !== undefined) out.push(["items", node.items]);
  return out;
}

/** Refuses a schema whose `$ref`s lead back into themselves. */
function checkNotRecursive(root: Record<string, unknown>, here: string): void {
  const resolve = (ref: string): unknown => {
    if (ref === "#") return root;
    const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    return match && isObject(root[match[1]])
      ? (root[match[1]] as Record<string, unknown>)[match[2]]
      : undefined;
  };
  const visit = (node: unknown, refs: readonly string[]): void => {
    if (!isObject(node)) return;
    if (typeof node.$ref === "string") {
      if (refs.includes(node.$ref)) {
        throw invalid(`${here}: recursive schemas are not supported ($ref '${node.$ref}')`);
      }
      visit(resolve(node.$ref), [...refs, node.$ref]);
    }
    for (const [path, child] of children(node)) {
      if (!path.startsWith("$defs") && !path.startsWith("definitions")) visit(child, refs);
    }
  };
  visit(root, ["#"]);
  for (const key of ["$defs", "definitions"]) {
    if (isObject(root[key])) {
      for (const [name, def] of Object.entries(root[key])) visit(def, [`#/${key}/${name}`]);
    }
  }
}

/**
 * The schema a model follows when it reads its descriptions: where a description's last paragraph
 * is a JSON object of constraints (how `@anthropic-ai/sdk` and Loom pass on what the API does not
 * take, `{"minItems":2}`), those constraints apply again, so the emulator's answer keeps them as
 * a real model mostly does. A stand-in for the model, not an API rule.
 */
export function followedSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(followedSchema);
  if (!isObject(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === "properties" || key === "$defs" || key === "definitions"
      ? isObject(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, followedSchema(v)]))
        : value
      : key === "items" || key === "anyOf" || key === "allOf"
      ? followedSchema(value)
      : value;
  }
  const last = typeof node.description === "string"
    ? node.description.split("\n\n").at(-1) ?? ""
    : "";
  if (!last.startsWith("{")) return out;
  try {
    const described: unknown = JSON.parse(last);
    if (isObject(described)) {
      for (const [key, value] of Object.entries(described)) if (!(key in out)) out[key] = value;
    }
  } catch {
    // Prose that happens to start with a brace: nothing to follow.
  }
  return out;
}
