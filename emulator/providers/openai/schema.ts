/**
 * Structured outputs, OpenAI's side: the strict-mode rules it enforces on a JSON schema. The
 * value answering a schema is provider independent (`../../schema-sample.ts`).
 *
 * Strict mode takes a documented subset of JSON Schema (Structured Outputs guide, "Supported
 * schemas"): the root is an object, not `anyOf`; every object sets `additionalProperties: false`
 * and requires all its properties; composition keywords (`allOf`, `not`, `if`/`then`/`else`,
 * `dependentRequired`, `dependentSchemas`) are refused; string formats come from a fixed list;
 * at most 10 levels of nested objects, 5000 object properties and 1000 enum values.
 * @module
 */
import { schemaType } from "../../schema-sample.ts";
import { invalid, isObject } from "./errors.ts";

/**
 * Keywords strict mode refuses wherever they appear. The composition keywords are the guide's
 * list; the rest are the keywords the openai SDK's own strict-schema transform refuses
 * (`JSON_SCHEMA_UNSUPPORTED_SCHEMA_KEYWORDS` in src/lib/transform.ts), which the guide leaves
 * out of the subset.
 */
const REFUSED_KEYWORDS = [
  "allOf",
  "not",
  "if",
  "then",
  "else",
  "dependentRequired",
  "dependentSchemas",
  "oneOf",
  "patternProperties",
  "propertyNames",
  "unevaluatedProperties",
  "unevaluatedItems",
  "minProperties",
  "maxProperties",
  "contains",
  "minContains",
  "maxContains",
  "uniqueItems",
  "prefixItems",
  "dependencies",
  "$anchor",
  "$dynamicAnchor",
  "$dynamicRef",
  "$recursiveAnchor",
  "$recursiveRef",
  // Observed refused ("'default' is not permitted", 567-labs/instructor#1074, 2024). unverified:
  // an OpenAI maintainer could not reproduce it on api.openai.com in 2026-08
  // (openai/openai-agents-python#4390); Azure OpenAI still refuses it. Kept refused.
  "default",
  // unverified: `$schema` refused (the SDK's transform strips it before sending).
  "$schema",
];

/**
 * String formats strict mode supports: the guide's list, as independent transcriptions of it
 * agree. unverified: not read on OpenAI's own page (not in the stored sources).
 */
const FORMATS = [
  "date-time",
  "time",
  "date",
  "duration",
  "email",
  "hostname",
  "ipv4",
  "ipv6",
  "uuid",
];

/** The guide's limits. */
const MAX_NESTING = 10;
const MAX_PROPERTIES = 5000;
const MAX_ENUM_VALUES = 1000;

/**
 * Checks a schema sent with `strict: true` against the strict subset. Throws the 400 the real
 * API answers with: `invalid_json_schema`, `Invalid schema for response_format '<name>': In
 * context=(<path>), <detail>` (the message shape of real refusals; the details of the format,
 * root and limit refusals are unverified).
 */
export function checkStrictSchema(schema: unknown, name: string, param: string): void {
  const refuse = (detail: string) => {
    throw invalid(
      `Invalid schema for response_format '${name}': ${detail}`,
      param,
      "invalid_json_schema",
    );
  };
  const fail = (context: string[], detail: string) => {
    const where = `(${context.map((c) => `'${c}'`).join(", ")}${context.length === 1 ? "," : ""})`;
    refuse(`In context=${where}, ${detail}`);
  };
  if (!isObject(schema) || schema.anyOf !== undefined || schemaType(schema) !== "object") {
    const type = isObject(schema) && schema.anyOf === undefined
      ? String(schemaType(schema) ?? "None")
      : "None";
    // unverified: the exact wording of the root refusal.
    refuse(`schema must be a JSON Schema of 'type: "object"', got 'type: "${type}"'.`);
  }
  const totals = { properties: 0, enumValues: 0 };
  const walk = (node: unknown, context: string[], depth: number) => {
    if (!isObject(node)) return;
    for (const key of REFUSED_KEYWORDS) {
      if (node[key] !== undefined) fail(context, `'${key}' is not permitted.`);
    }
    if (typeof node.format === "string" && !FORMATS.includes(node.format)) {
      // unverified: the wording of an unsupported format's refusal.
      fail(
        context,
        `'${node.format}' is not a supported format. Supported formats are: ${FORMATS.join(", ")}.`,
      );
    }
    if (Array.isArray(node.enum)) totals.enumValues += node.enum.length;
    let level = depth;
    if (schemaType(node) === "object" && node.$ref === undefined) {
      level += 1;
      // unverified: the wording of the limit refusals.
      if (level > MAX_NESTING) {
        fail(context, `the schema has more than ${MAX_NESTING} levels of nesting.`);
      }
      const props = isObject(node.properties) ? node.properties : {};
      if (node.additionalProperties !== false) {
        fail(context, "'additionalProperties' is required to be supplied and to be false.");
      }
      const required = Array.isArray(node.required) ? node.required : [];
      const absent = Object.keys(props).filter((k) => !required.includes(k));
      if (absent.length) {
        fail(
          context,
          `'required' is required to be supplied and to be an array including every key in properties. Missing '${
            absent[0]
          }'.`,
        );
      }
      for (const [k, sub] of Object.entries(props)) {
        totals.properties += 1;
        walk(sub, [...context, "properties", k], level);
      }
    }
    if (node.items !== undefined) walk(node.items, [...context, "items"], level);
    if (Array.isArray(node.anyOf)) {
      node.anyOf.forEach((o, i) => walk(o, [...context, "anyOf", String(i)], level));
    }
    for (const key of ["$defs", "definitions"]) {
      if (isObject(node[key])) {
        for (const [k, sub] of Object.entries(node[key])) walk(sub, [...context, key, k], level);
      }
    }
  };
  walk(schema, [], 0);
  if (totals.properties > MAX_PROPERTIES) {
    refuse(
      `the schema has ${totals.properties} object properties; at most ${MAX_PROPERTIES} are permitted.`,
    );
  }
  if (totals.enumValues > MAX_ENUM_VALUES) {
    refuse(
      `the schema has ${totals.enumValues} enum values; at most ${MAX_ENUM_VALUES} are permitted.`,
    );
  }
}
