/**
 * Validates request bodies and answers against OpenAI's published OpenAPI definition (normalised
 * by `./spec.ts`, whose doc comment lists the spec's quirks). Nothing is read before the first
 * check; each component schema is compiled on its first use (or when {@link OpenApiValidator.prepare}d)
 * and cached per spec path for the whole process.
 *
 * ```ts
 * const spec = openApiValidator(); // or openApiValidator("/path/to/openai-openapi.yaml")
 * spec.request("POST /v1/chat/completions", body);        // → Violation[] (empty when valid)
 * spec.response("GET /v1/batches/batch_abc", answer);     // 200 schema; ErrorResponse when status ≥ 400
 * spec.streamEvent("createChatCompletion", chunk);        // one streamed chunk
 * spec.batchOutputLine("/v1/chat/completions", line);     // one line of a batch output/error file
 * spec.schema("Batch", value, "answer");                  // any component schema, either direction
 * ```
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import * as formatsModule from "ajv-formats";
import { existsSync } from "node:fs";
import { defaultSpecPath, type LoadedSpec, loadSpec, type Operation } from "./spec.ts";

/** Which way a value travels: what a client sends, or what the API answers. */
export type Direction = "request" | "answer";

/** One place where a value breaks the spec. */
export interface Violation {
  /** JSON pointer of the value at fault; for a missing member, the member's own pointer. */
  pointer: string;
  /** The same place as OpenAI names parameters: `messages[0].content` (empty for the whole body). */
  param: string;
  /** The JSON Schema keyword that failed (`required`, `type`, `enum`, `additionalProperties`…). */
  keyword: string;
  /** Ajv's description of the failure ("must be string"). */
  message: string;
  /** Ajv's parameters of the failure (`type`, `allowedValues`, `limit`, `missingProperty`…). */
  params: Record<string, unknown>;
  /** The offending value (undefined for a missing member). */
  value: unknown;
}

/** A validator for one copy of the spec. */
export interface OpenApiValidator {
  /** The spec file in use. */
  readonly specPath: string;
  /**
   * Checks a request body against the operation's request schema. `target` is an operationId
   * (`createChatCompletion`), `"METHOD /path"` (with or without `/v1`; a concrete path such as
   * `GET /v1/batches/batch_abc` finds its template) or a component schema name.
   * Violations come most specific first.
   */
  request(target: string, body: unknown): Violation[];
  /** Checks an answer: the operation's 200 schema, or `ErrorResponse` when `status` ≥ 400. */
  response(target: string, body: unknown, status?: number): Violation[];
  /** Checks one `text/event-stream` event of an operation (a chat completion chunk). */
  streamEvent(target: string, event: unknown): Violation[];
  /** Checks a value against a component schema. */
  schema(name: string, value: unknown, direction?: Direction): Violation[];
  /**
   * Checks one line of a batch output or error file: the envelope ({@link BATCH_REQUEST_OUTPUT}),
   * then `response.body` against the answer schema of the batch's `endpoint` (`/v1/chat/completions`)
   * or `ErrorResponse` when its `status_code` is ≥ 400. Body violations' pointers start `/response/body`.
   */
  batchOutputLine(endpoint: string, line: unknown): Violation[];
  /**
   * Compiles the request schemas of `targets` now rather than on first use: a first request then
   * costs no compile time (which would be seen as latency by a client with a tight timeout).
   */
  prepare(...targets: string[]): void;
  /** The operation a target names (throws when the spec has none). */
  operation(target: string): Operation;
  /** The normalised spec (quirk lists included). */
  spec(): LoadedSpec;
}

type Compiled = { ajv: Ajv2020; functions: Map<string, ValidateFunction> };
/** Per spec path and direction, made on first use (the emulator itself only checks requests). */
const compilers = new Map<string, Compiled>();

/**
 * One line of a batch output or error file. The 2026-08 definition no longer has this schema;
 * this is `BatchRequestOutput` as earlier releases of openai/openai-openapi published it (spec
 * version 2.3.0, as quoted by clients generated from it): `response` and `error` nullable,
 * `error` `{code, message}`.
 */
export const BATCH_REQUEST_OUTPUT = {
  type: "object",
  properties: {
    id: { type: "string" },
    custom_id: { type: "string" },
    response: {
      type: ["object", "null"],
      properties: {
        status_code: { type: "integer" },
        request_id: { type: "string" },
        body: { type: "object" },
      },
    },
    error: {
      type: ["object", "null"],
      properties: { code: { type: "string" }, message: { type: "string" } },
    },
  },
} as const;

/** OpenAPI formats that JSON Schema does not define: annotations only (quirk 6). */
const ANNOTATION_FORMATS = [
  "int64",
  "int32",
  "double",
  "float",
  "binary",
  "byte",
  "unixtime",
  "password",
];

function compilerFor(spec: LoadedSpec, direction: Direction): Compiled {
  const key = `${direction} ${spec.path}`;
  let compiled = compilers.get(key);
  if (!compiled) {
    // strict stays on (unknown keywords, formats and ignored defaults are errors) except
    // strictTypes/strictRequired/strictTuples: the spec has `discriminator` without `type: object`
    // and `required` naming properties another `allOf` branch defines, valid JSON Schema that
    // Ajv's strict mode only logs (dozens of lines per compile).
    const ajv = new Ajv2020({
      allErrors: true,
      discriminator: true,
      inlineRefs: false,
      strictTypes: false,
      strictRequired: false,
      strictTuples: false,
      validateFormats: true,
    });
    const addFormats = ((formatsModule as { default?: unknown }).default ?? formatsModule) as (
      a: Ajv2020,
    ) => void;
    addFormats(ajv);
    for (const f of ANNOTATION_FORMATS) ajv.addFormat(f, true);
    // The document is registered whole so `#/components/schemas/…` pointers resolve; its
    // `components` member is declared an (empty) keyword so strict mode accepts the root.
    ajv.addKeyword({ keyword: "components" });
    ajv.addSchema({
      $id: "openai",
      ...(direction === "request" ? spec.requestDoc : spec.answerDoc),
    });
    compiled = { ajv, functions: new Map() };
    compilers.set(key, compiled);
  }
  return compiled;
}

/**
 * `/messages/0/content` → `messages[0].content`. With the value (`root`) a numeric key of an
 * object stays a key (`logit_bias.50256`); without it every numeric key is taken for an index.
 */
export function pointerToParam(pointer: string, root?: unknown): string {
  let out = "";
  let node: unknown = root;
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    const index = /^\d+$/.test(part) && (root === undefined || Array.isArray(node));
    out += index ? `[${part}]` : out ? `.${part}` : part;
    node = typeof node === "object" && node !== null
      ? (node as Record<string, unknown>)[part]
      : undefined;
  }
  return out;
}

function valueAt(root: unknown, pointer: string): unknown {
  let v = root;
  for (const raw of pointer.split("/").slice(1)) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[raw.replaceAll("~1", "/").replaceAll("~0", "~")];
  }
  return v;
}

/** Keywords that only say "some branch failed": their branches' own errors say where. */
const SUMMARY = new Set(["anyOf", "oneOf", "if", "not", "discriminator"]);

/** Ajv errors as violations, most specific first (deepest place; a branch's error before its summary). */
function toViolations(errors: ErrorObject[] | null | undefined, root: unknown): Violation[] {
  if (!errors?.length) return [];
  const seen = new Set<string>();
  const out: Array<Violation & { rank: number }> = [];
  for (const e of errors) {
    let pointer = e.instancePath;
    if (e.keyword === "required") pointer += `/${String(e.params.missingProperty)}`;
    if (e.keyword === "additionalProperties") pointer += `/${String(e.params.additionalProperty)}`;
    if (e.keyword === "discriminator" && e.params.tag) pointer += `/${String(e.params.tag)}`;
    const key = `${pointer} ${e.keyword} ${JSON.stringify(e.params)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const depth = pointer.split("/").length;
    // At one place: a branch's own error, then an enum, then a bare "must be null" (the null
    // branch of a nullable value says least), then the summary of the branches.
    const nullOnly = e.keyword === "type" && e.params.type === "null";
    const rank = depth * 10 - (SUMMARY.has(e.keyword) ? 5 : 0) -
      (e.keyword === "enum" || e.keyword === "const" ? 1 : 0) -
      (nullOnly ? 3 : 0);
    out.push({
      pointer,
      param: pointerToParam(pointer, root),
      keyword: e.keyword,
      message: e.message ?? e.keyword,
      params: e.params as Record<string, unknown>,
      value: e.keyword === "required" ? undefined : valueAt(root, pointer),
      rank,
    });
  }
  return out.sort((a, b) => b.rank - a.rank).map(({ rank: _rank, ...v }) => v);
}

/** Whether a concrete path fits a path template, segment by segment (`{x}` is any one segment). */
function templateMatches(template: string, path: string): boolean {
  const t = template.split("/");
  const p = path.split("/");
  return t.length === p.length &&
    t.every((seg, i) => (/^\{[^}]+\}$/.test(seg) ? p[i] !== "" : seg === p[i]));
}

/**
 * A validator for OpenAI's OpenAPI definition at `specPath` (default: {@link defaultSpecPath},
 * which throws when the file cannot be found). Nothing is read until the first check.
 */
export function openApiValidator(specPath: string = defaultSpecPath()): OpenApiValidator {
  if (!existsSync(specPath)) {
    throw new Error(`OpenAI's OpenAPI definition not found at ${specPath}.`);
  }
  let envelope: ValidateFunction | undefined;
  const spec = () => loadSpec(specPath);
  const operation = (target: string): Operation => {
    const [method, rawPath] = target.includes(" ") ? target.split(" ", 2) : [undefined, undefined];
    const path = rawPath?.replace(/^\/v1(?=\/)/, "");
    // A concrete path (`/files/file-abc`) matches its template (`/files/{file_id}`); an exact match wins.
    const ops = spec().operations;
    const op = method
      ? ops.find((o) => o.method === method.toUpperCase() && o.path === path) ??
        ops.find((o) => o.method === method.toUpperCase() && templateMatches(o.path, path!))
      : ops.find((o) => o.operationId === target);
    if (!op) throw new Error(`OpenAI's OpenAPI definition has no operation ${target}.`);
    return op;
  };
  const schema = (name: string, value: unknown, direction: Direction = "request"): Violation[] => {
    const s = spec();
    if (!(s.requestDoc.components as { schemas: Record<string, unknown> }).schemas[name]) {
      throw new Error(`OpenAI's OpenAPI definition has no component schema ${name}.`);
    }
    const fn = compiled(name, direction);
    return fn(value) ? [] : toViolations(fn.errors, value);
  };
  const compiled = (name: string, direction: Direction): ValidateFunction => {
    const c = compilerFor(spec(), direction);
    let fn = c.functions.get(name);
    if (!fn) {
      fn = c.ajv.getSchema(`openai#/components/schemas/${name}`)!;
      c.functions.set(name, fn);
    }
    return fn;
  };
  const named = (
    target: string,
    pick: (op: Operation) => string | undefined,
    what: string,
  ): string => {
    if (
      !target.includes(" ") &&
      target in (spec().requestDoc.components as { schemas: object }).schemas
    ) return target;
    const op = operation(target);
    const name = pick(op);
    if (!name) throw new Error(`OpenAI's OpenAPI definition gives ${target} no ${what} schema.`);
    return name;
  };
  return {
    specPath,
    operation,
    spec,
    schema,
    request: (target, body) => schema(named(target, (o) => o.request, "request"), body, "request"),
    response: (target, body, status = 200) =>
      schema(
        status >= 400 ? "ErrorResponse" : named(target, (o) => o.response, "response"),
        body,
        "answer",
      ),
    prepare: (...targets) =>
      targets.forEach((t) => compiled(named(t, (o) => o.request, "request"), "request")),
    streamEvent: (target, event) =>
      schema(named(target, (o) => o.stream, "stream"), event, "answer"),
    batchOutputLine(endpoint, line) {
      envelope ??= compilerFor(spec(), "answer").ajv.compile(BATCH_REQUEST_OUTPUT);
      if (!envelope(line)) return toViolations(envelope.errors, line);
      const response =
        (line as { response?: { status_code?: number; body?: unknown } | null }).response;
      if (!response) return [];
      const status = response.status_code ?? 200;
      const target = `POST ${endpoint}`;
      return (status >= 400
        ? schema("ErrorResponse", response.body, "answer")
        : this.response(target, response.body))
        .map((v) => ({
          ...v,
          pointer: `/response/body${v.pointer}`,
          param: pointerToParam(`/response/body${v.pointer}`, line),
        }));
    },
  };
}
