/**
 * Structured outputs, OpenAI's side: the strict-mode rules it enforces on a JSON schema. The
 * value answering a schema is provider independent (`../../schema-sample.ts`).
 * @module
 */
import { schemaType } from "../../schema-sample.ts";
import { invalid, isObject } from "./errors.ts";

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
    if (schemaType(node) === "object" && node.$ref === undefined) {
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
