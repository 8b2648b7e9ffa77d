/**
 * Structured output: the job's `schema` (a JSON Schema for the answer), loaded, checked and
 * compiled before any work, and the check every answer goes through. The check is provider
 * neutral and runs after the provider's own structured-output mode, so an answer that does not
 * parse, does not match, was refused or was cut off at `max_tokens` becomes that row's error
 * (never a crash, never a silently wrong row). Sync and batch runs share it.
 * @module
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parseDocument } from "yaml";
import { LoomJobError } from "../base/errors.ts";
import type { LoadedJob } from "../job/load.ts";
import { displayPath } from "../base/paths.ts";
import type { GenerateResult } from "../spec/provider.ts";

/** A JSON Schema, as a plain object. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** What a checked answer turned out to be. */
export type AnswerVerdict =
  | { readonly value: Readonly<Record<string, unknown>> }
  | { readonly error: string };

/** A job's answer schema, ready to use. */
export interface AnswerSchema {
  /** The schema as the job gives it; providers send it in their native form. */
  readonly schema: JsonSchema;
  /** Its top-level properties, in schema order: the columns a flat format (CSV) gets. */
  readonly fields: readonly string[];
  /** Parses an answer and checks it against the schema. */
  check(result: GenerateResult): AnswerVerdict;
}

/** Most schema violations listed in one row error. */
const MAX_LISTED = 3;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Loads, checks and compiles the job's `schema`, or returns undefined when it has none.
 * @throws LoomJobError at the `schema` key: unreadable file, bad JSON/YAML, not a JSON Schema,
 * or not an object with properties.
 */
export async function loadAnswerSchema(job: LoadedJob): Promise<AnswerSchema | undefined> {
  const given = job.spec.schema;
  if (given === undefined) return undefined;
  const fail = (message: string): never => {
    throw new LoomJobError(
      [{ where: job.where(["schema"]), path: "schema", message }],
      "the answer schema cannot be used",
    );
  };
  const schema = typeof given === "string" ? await readSchemaFile(given, fail) : given;
  const properties = schema.properties;
  const type = schema.type;
  if (
    (type !== undefined && type !== "object") || !isObject(properties) ||
    Object.keys(properties).length === 0
  ) {
    fail(
      `the answer must be an object with named fields (type: object, properties: ...), whose fields become columns; ` +
        `got ${
          type === undefined ? "no properties" : `type ${JSON.stringify(type)}`
        }. To get a list, wrap it in a field.`,
    );
  }
  const validate = await compile(schema, fail);
  return {
    schema,
    fields: Object.keys(properties as object),
    check: (result) => checkAnswer(result, validate),
  };
}

/** Reads a schema file: JSON (`.json`) or YAML (anything else). */
async function readSchemaFile(
  path: string,
  fail: (message: string) => never,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    return fail(
      code === "ENOENT"
        ? `${displayPath(path)} does not exist`
        : `cannot read ${displayPath(path)}: ${(error as Error).message}`,
    );
  }
  let value: unknown;
  if (extname(path).toLowerCase() === ".json") {
    try {
      value = JSON.parse(text);
    } catch (error) {
      // V8 names the line and column of the problem in its message.
      return fail(`${displayPath(path)} is not valid JSON: ${(error as Error).message}`);
    }
  } else {
    const doc = parseDocument(text, { uniqueKeys: true });
    const problem = doc.errors[0];
    if (problem) {
      const at = problem.linePos?.[0];
      return fail(
        `${displayPath(path)}${at ? `:${at.line}:${at.col}` : ""}: ${
          problem.message.split("\n")[0]
        }`,
      );
    }
    value = doc.toJS();
  }
  if (!isObject(value)) return fail(`${displayPath(path)} must hold a JSON Schema object`);
  return value;
}

/** A compiled validator: the errors of a value, or none. */
type Validate = (value: unknown) => string[];

/** Compiles with Ajv, for the draft the schema names (2020-12 unless it says draft-07 or 2019-09). */
async function compile(schema: JsonSchema, fail: (message: string) => never): Promise<Validate> {
  const draft = String(schema.$schema ?? "");
  const ajvModule = draft.includes("draft-07") || draft.includes("draft-06")
    ? (await import("ajv")).Ajv
    : draft.includes("2019-09")
    ? (await import("ajv/dist/2019.js")).Ajv2019
    : (await import("ajv/dist/2020.js")).Ajv2020;
  // Not strict: providers add their own keywords (Gemini's propertyOrdering, say).
  const ajv = new ajvModule({ allErrors: true, strict: false });
  const formats = await import("ajv-formats");
  // A CommonJS module: its function is the default export under Node and Deno alike.
  const addFormats = ((formats as { default?: unknown }).default ?? formats) as unknown as
    | ((ajv: unknown) => void)
    | { default: (ajv: unknown) => void };
  (typeof addFormats === "function" ? addFormats : addFormats.default)(ajv);
  let validate;
  try {
    validate = ajv.compile(schema);
  } catch (error) {
    return fail(`not a valid JSON Schema: ${(error as Error).message}`);
  }
  return (value) =>
    validate(value)
      ? []
      : (validate.errors ?? []).map((e) =>
        `${e.instancePath || "(the answer)"} ${e.message ?? "is invalid"}`
      );
}

/** Removes one Markdown code fence around the answer, as some models add one despite JSON mode. */
function unfence(text: string): string {
  const fenced = /^\s*```[a-zA-Z]*\s*\n([\s\S]*?)\n?```\s*$/.exec(text);
  return fenced ? fenced[1] : text;
}

/**
 * The error of an answer left empty because generation stopped at `max_tokens` (a reasoning
 * model that spent the whole budget thinking): paid for, but no answer, so never cached.
 */
function emptiedAtMaxTokens(result: GenerateResult): AnswerVerdict | undefined {
  if (!result.truncated || result.text.trim() !== "") return undefined;
  const reasoning = result.usage?.reasoningTokens;
  const spent = reasoning
    ? `spent all of max_tokens on reasoning (${reasoning} tokens)`
    : "reached max_tokens";
  return {
    error: `the model ${spent} before it answered, so the answer is empty; raise params.max_tokens`,
  };
}

/**
 * The check of an answer without a schema: an empty answer the provider withheld (a refusal, a
 * safety block) or that reasoning used up (`max_tokens` reached before any text) is the row's
 * error rather than an empty cell that looks like success.
 */
export function checkPlainAnswer(result: GenerateResult): AnswerVerdict | undefined {
  if (result.refusal !== undefined && result.text.trim() === "") {
    return { error: `the model gave no answer: ${result.refusal}` };
  }
  return emptiedAtMaxTokens(result);
}

/** The verdict on one answer. */
function checkAnswer(result: GenerateResult, validate: Validate): AnswerVerdict {
  if (result.refusal !== undefined) {
    return { error: `the model refused to answer: ${result.refusal}` };
  }
  const emptied = emptiedAtMaxTokens(result);
  if (emptied) return emptied;
  if (result.truncated) {
    return {
      error: "the answer was cut off at max_tokens before it was complete; raise params.max_tokens",
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(unfence(result.text));
  } catch (error) {
    return {
      error: `the answer is not valid JSON (${
        (error as Error).message
      }); the raw answer is in llm_response`,
    };
  }
  const problems = validate(value);
  if (!problems.length && !isObject(value)) {
    problems.push(
      `(the answer) must be an object, got ${Array.isArray(value) ? "a list" : typeof value}`,
    );
  }
  if (problems.length) {
    const more = problems.length > MAX_LISTED ? ` (and ${problems.length - MAX_LISTED} more)` : "";
    return {
      error: `the answer does not match the schema: ${
        problems.slice(0, MAX_LISTED).join("; ")
      }${more}`,
    };
  }
  return { value: value as Record<string, unknown> };
}
