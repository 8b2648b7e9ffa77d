/**
 * One Ajv (JSON Schema 2020-12, with formats) for the harness's validators.
 * @module
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import formatsModule from "ajv-formats";
import { ajvProblems, type Problem, type SchemaCheck } from "./violations.ts";

/** A fresh Ajv 2020 with every error reported and the standard formats. */
export function harnessAjv(options: { verbose?: boolean } = {}): Ajv2020 {
  // Not strict: the published definitions carry keywords of their own (OpenAPI's `example`,
  // `x-*`, `discriminator`); they are documentation, not constraints.
  const ajv = new Ajv2020({
    allErrors: true,
    strict: false,
    logger: false,
    verbose: options.verbose ?? false,
  });
  // A CommonJS module: its function is the default export under Node and Deno alike.
  const add = ((formatsModule as { default?: unknown }).default ?? formatsModule) as (
    a: Ajv2020,
  ) => void;
  add(ajv);
  return ajv;
}

/**
 * Checks against the named definitions of one JSON Schema document (its `definitions` or
 * `$defs`), compiled lazily, once per name; refs resolve inside the document.
 *
 * A failed union (`anyOf`/`oneOf`) over objects tagged by `type` (Anthropic's content blocks,
 * batch results) is reported as the failures of the one branch whose `type` constant the value
 * names: otherwise every other branch's "must be equal to constant" buries the real mismatch.
 */
export function definitionChecks(
  document: Record<string, unknown>,
  id: string,
): (name: string) => SchemaCheck {
  const ajv = harnessAjv({ verbose: true });
  ajv.addSchema({ ...document, $id: id }, id);
  const key = "$defs" in document ? "$defs" : "definitions";
  const compiled = new Map<string, ValidateFunction>();
  const compile = (pointer: string) => {
    let validate = compiled.get(pointer);
    if (!validate) compiled.set(pointer, validate = ajv.compile({ $ref: `${id}${pointer}` }));
    return validate;
  };
  const resolve = (schema: unknown): Record<string, unknown> | undefined => {
    const r = (schema as { $ref?: string } | undefined)?.$ref;
    if (typeof r !== "string" || !r.startsWith("#/")) {
      return schema as Record<string, unknown> | undefined;
    }
    return resolve(
      r.slice(2).split("/").reduce<unknown>(
        (at, k) => (at as Record<string, unknown>)?.[k],
        document,
      ),
    );
  };
  const problemsOf = (validate: ValidateFunction, value: unknown): Problem[] => {
    if (validate(value)) return [];
    const errors = [...(validate.errors ?? [])];
    const replaced: { at: string; problems: Problem[] }[] = [];
    for (const e of errors) {
      if ((e.keyword !== "anyOf" && e.keyword !== "oneOf") || !Array.isArray(e.schema)) continue;
      if (replaced.some((r) => e.instancePath.startsWith(r.at))) continue;
      const tag = (e.data as { type?: unknown } | null)?.type;
      if (typeof tag !== "string") continue;
      const branch = (e.schema as { $ref?: string }[]).find((b) => {
        const t = (resolve(b)?.properties as Record<string, { const?: unknown }> | undefined)?.type;
        return t?.const === tag;
      });
      if (!branch?.$ref?.startsWith("#/")) continue;
      const inner = problemsOf(compile(branch.$ref), e.data);
      replaced.push({
        at: e.instancePath,
        problems: inner.map((p) => ({ path: e.instancePath + p.path, message: p.message })),
      });
    }
    const rest = errors.filter((e) =>
      !replaced.some((r) => e.instancePath === r.at || e.instancePath.startsWith(r.at + "/"))
    );
    return [...ajvProblems(rest), ...replaced.flatMap((r) => r.problems)];
  };
  return (name) => (value) => problemsOf(compile(`#/${key}/${name}`), value);
}
