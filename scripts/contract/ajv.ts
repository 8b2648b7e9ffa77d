/**
 * One Ajv (JSON Schema 2020-12, with formats) for the harness's validators.
 * @module
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import formatsModule from "ajv-formats";
import { ajvProblems, type SchemaCheck } from "./violations.ts";

/** A fresh Ajv 2020 with every error reported and the standard formats. */
export function harnessAjv(): Ajv2020 {
  // Not strict: the published definitions carry keywords of their own (OpenAPI's `example`,
  // `x-*`, `discriminator`); they are documentation, not constraints.
  const ajv = new Ajv2020({ allErrors: true, strict: false, logger: false });
  // A CommonJS module: its function is the default export under Node and Deno alike.
  const add = ((formatsModule as { default?: unknown }).default ?? formatsModule) as (a: Ajv2020) => void;
  add(ajv);
  return ajv;
}

/**
 * Checks against the named definitions of one JSON Schema document (its `definitions` or
 * `$defs`), compiled lazily, once per name; refs resolve inside the document.
 */
export function definitionChecks(document: Record<string, unknown>, id: string): (name: string) => SchemaCheck {
  const ajv = harnessAjv();
  ajv.addSchema({ ...document, $id: id }, id);
  const key = "$defs" in document ? "$defs" : "definitions";
  const compiled = new Map<string, SchemaCheck>();
  return (name) => {
    let check = compiled.get(name);
    if (!check) {
      const validate = ajv.compile({ $ref: `${id}#/${key}/${name}` });
      check = (value) => (validate(value) ? [] : ajvProblems(validate.errors));
      compiled.set(name, check);
    }
    return check;
  };
}
