/**
 * Structured outputs: the strict-mode rules OpenAI enforces on a JSON schema, and a deterministic
 * value that conforms to a schema, built around the plain-text answer (every free string is the
 * answer, every number its token count) so structured replies stay checkable row by row.
 * @module
 */
import { countTokens } from "../../answers.ts";
import { invalid, isObject } from "./errors.ts";

type Schema = Record<string, unknown>;

function resolve(schema: Schema, root: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== "string") return schema;
  const match = ref.match(/^#\/(\$defs|definitions)\/(.+)$/);
  const target = match ? (root[match[1]] as Record<string, unknown> | undefined)?.[match[2]] : ref === "#" ? root : undefined;
  return isObject(target) ? target : {};
}

function typeOf(schema: Schema): string | undefined {
  const t = schema.type;
  if (Array.isArray(t)) return t.find((x) => x !== "null") ?? t[0];
  if (typeof t === "string") return t;
  if (isObject(schema.properties)) return "object";
  if (schema.items !== undefined) return "array";
  return undefined;
}

/** A value conforming to `schema`, whose strings carry `text`. */
export function sampleValue(schema: unknown, text: string, root?: Schema, depth = 0): unknown {
  if (!isObject(schema) || depth > 16) return text;
  const top = root ?? schema;
  const s = resolve(schema, top);
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const options = s[key];
    if (Array.isArray(options) && options.length) {
      const first = options.find((o) => !(isObject(o) && o.type === "null")) ?? options[0];
      return sampleValue(first, text, top, depth + 1);
    }
  }
  switch (typeOf(s)) {
    case "object": {
      const out: Record<string, unknown> = {};
      const props = isObject(s.properties) ? s.properties : {};
      for (const [name, sub] of Object.entries(props)) out[name] = sampleValue(sub, text, top, depth + 1);
      return out;
    }
    case "array": {
      const min = typeof s.minItems === "number" ? Math.max(1, s.minItems) : 1;
      return Array.from({ length: Math.min(min, 8) }, () => sampleValue(s.items, text, top, depth + 1));
    }
    case "integer":
    case "number":
      return Math.max(typeof s.minimum === "number" ? Math.ceil(s.minimum) : 0, countTokens(text));
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      return text;
  }
}

/**
 * Strict-mode checks: every object sets `additionalProperties: false` and lists every property
 * in `required`. Throws the 400 the real API answers with.
 */
export function checkStrictSchema(schema: unknown, name: string, param: string): void {
  const fail = (context: string[], detail: string) => {
    const where = `(${context.map((c) => `'${c}'`).join(", ")}${context.length === 1 ? "," : ""})`;
    throw invalid(`Invalid schema for response_format '${name}': In context=${where}, ${detail}`, param, "invalid_json_schema");
  };
  const walk = (node: unknown, context: string[], depth: number) => {
    if (!isObject(node) || depth > 32) return;
    if (typeOf(node) === "object" && node.$ref === undefined) {
      const props = isObject(node.properties) ? node.properties : {};
      if (node.additionalProperties !== false) {
        fail(context, "'additionalProperties' is required to be supplied and to be false.");
      }
      const required = Array.isArray(node.required) ? node.required : [];
      const absent = Object.keys(props).filter((k) => !required.includes(k));
      if (absent.length) {
        fail(context, `'required' is required to be supplied and to be an array including every key in properties. Missing '${absent[0]}'.`);
      }
      for (const [k, sub] of Object.entries(props)) walk(sub, [...context, "properties", k], depth + 1);
    }
    if (node.items !== undefined) walk(node.items, [...context, "items"], depth + 1);
    for (const key of ["anyOf", "oneOf", "allOf"]) {
      if (Array.isArray(node[key])) (node[key] as unknown[]).forEach((o, i) => walk(o, [...context, key, String(i)], depth + 1));
    }
    for (const key of ["$defs", "definitions"]) {
      if (isObject(node[key])) for (const [k, sub] of Object.entries(node[key])) walk(sub, [...context, key, k], depth + 1);
    }
  };
  walk(schema, [], 0);
}
