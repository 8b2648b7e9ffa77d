/**
 * What the providers accept as an answer schema, beyond what their request types can say (the
 * types only say "an object"): rules taken from the official SDKs' own schema helpers, which
 * exist precisely to turn a JSON Schema into one the API takes.
 * - OpenAI strict mode (`openai` SDK, `lib/transform`, `ensureStrictJsonSchema`): a fixed list of
 *   unsupported keywords; every object closed (`additionalProperties: false`) with every property
 *   required (the SDK's error links the guide's "all fields must be required"); arrays need `items`.
 * - Anthropic `output_config.format` (`@anthropic-ai/sdk`, `lib/transform-json-schema`): every
 *   object closed (the API's 400: "For 'object' type, 'additionalProperties' must be explicitly
 *   set to false"); `minItems` only 0 or 1.
 * @module
 */
import type { Problem } from "./violations.ts";

type Node = Record<string, unknown>;

/** Keywords OpenAI's SDK refuses in a strict schema (its `JSON_SCHEMA_UNSUPPORTED_SCHEMA_KEYWORDS`). */
const OPENAI_STRICT_UNSUPPORTED = [
  "$anchor",
  "$dynamicAnchor",
  "$dynamicRef",
  "$recursiveAnchor",
  "$recursiveRef",
  "allOf",
  "contains",
  "contentEncoding",
  "contentMediaType",
  "contentSchema",
  "dependentRequired",
  "dependentSchemas",
  "dependencies",
  "else",
  "if",
  "maxContains",
  "maxProperties",
  "minContains",
  "minProperties",
  "not",
  "oneOf",
  "patternProperties",
  "prefixItems",
  "propertyNames",
  "then",
  "unevaluatedItems",
  "unevaluatedProperties",
  "uniqueItems",
];

/** Keywords whose value is one subschema, a list of them, or a map of them. */
const ONE = [
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
];
const LIST = ["anyOf", "oneOf", "allOf", "prefixItems"];
const MAP = ["properties", "$defs", "definitions", "patternProperties", "dependentSchemas"];

/** Visits every subschema with its JSON Pointer. */
function walk(node: unknown, path: string, visit: (n: Node, path: string) => void): void {
  if (!node || typeof node !== "object" || Array.isArray(node)) return;
  const n = node as Node;
  visit(n, path);
  for (const k of ONE) if (n[k] && typeof n[k] === "object") walk(n[k], `${path}/${k}`, visit);
  for (const k of LIST) {
    if (Array.isArray(n[k])) {
      (n[k] as unknown[]).forEach((s, i) => walk(s, `${path}/${k}/${i}`, visit));
    }
  }
  for (const k of MAP) {
    if (n[k] && typeof n[k] === "object") {
      for (const [name, s] of Object.entries(n[k] as Node)) {
        walk(s, `${path}/${k}/${name}`, visit);
      }
    }
  }
}

const isObject = (n: Node) =>
  n.type === "object" || (Array.isArray(n.type) && n.type.includes("object")) || "properties" in n;

/** Problems of a schema sent with `strict: true` to OpenAI. */
export function openAiStrictProblems(schema: unknown): Problem[] {
  const out: Problem[] = [];
  walk(schema, "", (n, path) => {
    for (const k of OPENAI_STRICT_UNSUPPORTED) {
      if (k in n) {
        out.push({ path: `${path}/${k}`, message: `strict mode does not support \`${k}\`` });
      }
    }
    if (isObject(n)) {
      if (n.additionalProperties !== false) {
        out.push({
          path,
          message: "strict mode needs additionalProperties: false on every object",
        });
      }
      const required = new Set(Array.isArray(n.required) ? n.required as string[] : []);
      for (const key of Object.keys((n.properties ?? {}) as Node)) {
        if (!required.has(key)) {
          out.push({
            path: `${path}/properties/${key}`,
            message: "strict mode needs every property required",
          });
        }
      }
    }
    if (
      (n.type === "array" || (Array.isArray(n.type) && n.type.includes("array"))) &&
      n.items === undefined
    ) {
      out.push({ path, message: "strict mode needs items on an array" });
    }
  });
  return out;
}

/** Problems of a schema sent in Anthropic's `output_config.format`. */
export function anthropicOutputSchemaProblems(schema: unknown): Problem[] {
  const out: Problem[] = [];
  walk(schema, "", (n, path) => {
    if (isObject(n) && n.additionalProperties !== false) {
      out.push({
        path,
        message: "For 'object' type, 'additionalProperties' must be explicitly set to false",
      });
    }
    if (n.minItems !== undefined && n.minItems !== 0 && n.minItems !== 1) {
      out.push({ path: `${path}/minItems`, message: "minItems must be 0 or 1" });
    }
  });
  return out;
}
