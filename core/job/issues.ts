/**
 * Turns valibot issues into messages a person can act on: `unknown key "modle" (did you mean
 * "model"?)`, `missing required key "model"`, `expected a whole number from 1 to 4096, got 0`.
 * The wording comes from the schema itself (its types, ranges and keys), so it stays in step with
 * `schema.ts` without a second list of rules.
 * @module
 */
import type * as v from "valibot";

/** What a problem is about, which decides where it is reported. */
export type ProblemKind = "unknown-key" | "missing-key" | "value";

/** One job problem, before it is given a place. */
export interface Problem {
  kind: ProblemKind;
  /** Key path; for unknown and missing keys, it ends with that key. */
  path: (string | number)[];
  message: string;
}

// Just the parts of valibot schemas we read; valibot's own types are too generic to walk.
interface SchemaLike {
  type: string;
  expects?: string;
  entries?: Record<string, SchemaLike>;
  item?: SchemaLike;
  wrapped?: SchemaLike;
  value?: SchemaLike;
  options?: readonly unknown[];
  pipe?: readonly { kind: string; type: string; requirement?: unknown }[];
}

/**
 * Human messages for the valibot issues of validating `input` against `schema`, duplicates
 * dropped, plus every unknown key: valibot's strict objects stop at the first unknown key of an
 * object, so those are found here by walking `input` against the schema instead.
 */
export function describeIssues(
  issues: readonly v.BaseIssue<unknown>[],
  schema: unknown,
  input: unknown,
): Problem[] {
  const root = schema as SchemaLike;
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const described = issues.flatMap((issue) => describe(issue, root) ?? []);
  for (const problem of [...described, ...unknownKeys(input, root, [], root)]) {
    // A value can fail several actions of one pipe (2.5 is neither whole nor >= 1) that we
    // word the same way; say it once.
    const id = `${problem.kind}\0${problem.path.join("\0")}\0${problem.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push(problem);
  }
  return problems;
}

/** `dataset.path`, `plugins[1]`: how a key path is shown. */
export function dottedPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const key of path) {
    out += typeof key === "number" ? `[${key}]` : out ? `.${key}` : key;
  }
  return out;
}

/** The problem an issue describes; undefined for unknown keys, which `unknownKeys` reports. */
function describe(issue: v.BaseIssue<unknown>, root: SchemaLike): Problem | undefined {
  const path = (issue.path ?? []).map((item) => item.key as string | number);
  const isObject = /object$/.test(issue.type);
  const lastIsKey = issue.path?.at(-1)?.origin === "key";
  if (isObject && lastIsKey && issue.expected === "never") return undefined;
  if (isObject && lastIsKey && issue.received === "undefined") {
    return { kind: "missing-key", path, message: `missing required key "${String(path.at(-1))}"` };
  }
  const problem = (message: string): Problem => ({ kind: "value", path, message });
  if (issue.kind === "schema" || /^(integer|min_value|max_value)$/.test(issue.type)) {
    const want = expected(schemaAt(root, path), issue);
    // YAML reads `model: 3.5` or `id: 42` as a number; the fix is quotes.
    const quote = want === "a string" && /number|boolean/.test(typeof issue.input);
    return problem(
      `expected ${want}, got ${shown(issue.input)}${quote ? " (put it in quotes)" : ""}`,
    );
  }
  if (issue.type === "min_length") {
    const n = issue.requirement;
    return problem(n === 1 ? "must not be empty" : `must have at least ${n} characters`);
  }
  // check() and anything else: the schema's own message is the best we have.
  return problem(issue.message);
}

function unknownKeys(
  value: unknown,
  schema: SchemaLike | undefined,
  path: (string | number)[],
  root: SchemaLike,
): Problem[] {
  const s = unwrap(schema);
  if (!s || typeof value !== "object" || value === null) return [];
  if (Array.isArray(value)) {
    return s.type === "array"
      ? value.flatMap((item, i) => unknownKeys(item, s.item, [...path, i], root))
      : [];
  }
  if (!s.entries) return [];
  const entries = s.entries;
  return Object.entries(value).flatMap(([key, child]): Problem[] => {
    const at = [...path, key];
    if (Object.hasOwn(entries, key)) return unknownKeys(child, entries[key], at, root);
    if (s.type !== "strict_object") return [];
    return [{
      kind: "unknown-key",
      path: at,
      message: `unknown key "${key}"${didYouMean(root, at)}`,
    }];
  });
}

function unwrap(schema: SchemaLike | undefined): SchemaLike | undefined {
  while (schema?.wrapped && /optional|nullable|nullish|undefinedable/.test(schema.type)) {
    schema = schema.wrapped;
  }
  return schema;
}

/** The (unwrapped) schema that validates the value at `path`. */
function schemaAt(root: SchemaLike, path: readonly (string | number)[]): SchemaLike | undefined {
  let schema = unwrap(root);
  for (const key of path) {
    if (schema?.entries) schema = schema.entries[key];
    else if (schema?.type === "array") schema = schema.item;
    else if (schema?.type === "record") schema = schema.value;
    else return undefined;
    schema = unwrap(schema);
  }
  return schema;
}

/** "a string", "a whole number from 1 to 4096", "one of "batch", "sync"", ... */
function expected(schema: SchemaLike | undefined, issue: v.BaseIssue<unknown>): string {
  if (!schema) return issue.expected ?? "something else";
  switch (schema.type) {
    case "string":
      return "a string";
    case "number":
      return numberText(schema);
    case "boolean":
      return "true or false";
    case "array": {
      const item = schema.item ? expected(unwrap(schema.item), issue) : "";
      return item.startsWith("a ") ? `a list of ${item.slice(2)}s` : "a list";
    }
    case "picklist":
      return `one of ${(schema.options ?? []).map((o) => JSON.stringify(o)).join(", ")}`;
    case "union":
      return (schema.options ?? []).map((o) => expected(unwrap(o as SchemaLike), issue)).join(
        " or ",
      );
    default:
      return /object$|^record$/.test(schema.type)
        ? "a mapping"
        : (schema.expects ?? issue.expected ?? "something else");
  }
}

function numberText(schema: SchemaLike): string {
  const pipe = schema.pipe ?? [];
  const find = (type: string) => pipe.find((a) => a.type === type)?.requirement;
  const noun = pipe.some((a) => a.type === "integer") ? "a whole number" : "a number";
  const min = find("min_value");
  const max = find("max_value");
  if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
  if (min !== undefined) return `${noun} of at least ${min}`;
  if (max !== undefined) return `${noun} of at most ${max}`;
  return noun;
}

/** A short description of a wrong value. */
function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  }
  if (typeof value !== "object") return String(value);
  const json = JSON.stringify(value);
  if (json.length <= 40) return json;
  return Array.isArray(value) ? "a list" : "a mapping";
}

/** ` (did you mean "model"?)` for a misspelt key, or a known key put at the wrong level. */
function didYouMean(root: SchemaLike, path: readonly (string | number)[]): string {
  const key = String(path.at(-1));
  const known = Object.keys(schemaAt(root, path.slice(0, -1))?.entries ?? {});
  const limit = key.length <= 3 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d <= limit && d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best) return ` (did you mean "${best}"?)`;
  // `workers: 8` at the top level most likely belongs under `sync:`.
  const elsewhere = keyPaths(root).filter((p) => p.at(-1) === key);
  if (elsewhere.length === 0 || elsewhere.length > 2) return "";
  return ` (did you mean ${elsewhere.map((p) => `"${p.join(".")}"`).join(" or ")}?)`;
}

/** Every key path the schema names (objects only; lists and records are not entered). */
function keyPaths(schema: SchemaLike | undefined, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const [key, child] of Object.entries(unwrap(schema)?.entries ?? {})) {
    out.push([...prefix, key], ...keyPaths(child, [...prefix, key]));
  }
  return out;
}

/** Optimal string alignment distance: edits, counting a swap of neighbours ("modle") as one. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
