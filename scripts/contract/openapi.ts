/**
 * What the harness needs from an OpenAPI validator ({@link OpenApiChecks}), and a thin one over
 * OpenAI's published definition (`../shared/reference/specs/openai-openapi.yaml`, never copied
 * into the repository). The emulator's own contract module (branch i10-contract) can stand in for
 * it through {@link OpenApiChecks}: the harness depends on the interface only.
 *
 * Spec quirks handled here:
 * - 3.0-style `nullable: true` in a 3.1 document becomes `null` added to the type (or an `anyOf`
 *   with `null` when there is no `type`);
 * - answers leave unset optional fields `null` where the definition types them string/integer
 *   (its own examples do, e.g. a Batch's `output_file_id`): in answers only, a property that is
 *   not `required` may be `null`;
 * - `$ref`s to `#/components/…` resolve inside the registered document; inline operation schemas
 *   get their refs pointed at it;
 * - OpenAPI-only keywords (`discriminator`, `example`, `x-*`, `deprecated`) are ignored (Ajv not strict);
 * - `?beta=true` path keys duplicate operations for the docs: skipped;
 * - operations list few error answers: any status ≥ 400 is checked as `ErrorResponse`.
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "../../core/test-support/paths.ts";
import { harnessAjv } from "./ajv.ts";
import { cacheDir, writeAtomically } from "./cache.ts";
import { ajvProblems, type Problem } from "./violations.ts";

/** Request and answer checks of an OpenAPI definition, addressed by method and path. */
export interface OpenApiChecks {
  /** Whether an operation of the definition serves `method path` (path below the server URL). */
  serves(method: string, path: string): boolean;
  /**
   * Problems of a JSON request body of the operation serving `method path` (path below the
   * server URL, e.g. `/chat/completions`, `/batches/batch_1`); undefined when no operation serves it.
   */
  request(method: string, path: string, body: unknown, contentType?: string): Problem[] | undefined;
  /** Problems of an answer of that operation with `status`; undefined when no operation serves it. */
  response(method: string, path: string, status: number, body: unknown): Problem[] | undefined;
  /** Problems of a value against a component schema by name (e.g. `ErrorResponse`). */
  schema(name: string, value: unknown): Problem[];
  /**
   * Every top-level member the operation's JSON request schema names (through `$ref`, `allOf`,
   * `anyOf`, `oneOf`), for checks the open schema can't make; undefined when unknown.
   */
  requestMembers?(method: string, path: string): ReadonlySet<string> | undefined;
}

/** Where OpenAI's published definition lives: `LOOM_OPENAI_SPEC`, else `../shared/reference/specs/` from the repo root. */
export function openAiSpecPath(env: Record<string, string | undefined> = process.env): string {
  return env.LOOM_OPENAI_SPEC ?? resolve(repoRoot(), "..", "shared", "reference", "specs", "openai-openapi.yaml");
}

type Json = Record<string, unknown>;

/** 3.0's `nullable: true` as 3.1 says it. */
function withoutNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutNullable);
  if (!node || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) if (k !== "nullable") out[k] = withoutNullable(v);
  if ((node as Json).nullable !== true) return out;
  if (typeof out.type === "string") return { ...out, type: [out.type, "null"] };
  if (Array.isArray(out.type)) return out.type.includes("null") ? out : { ...out, type: [...out.type, "null"] };
  return { anyOf: [out, { type: "null" }] };
}

/** The parsed definition, cached as JSON (keyed by size and time) so reruns skip the 3 MB YAML parse. */
function loadSpec(specPath: string): Json {
  if (!existsSync(specPath)) {
    throw new Error(`OpenAI's published definition is missing at ${specPath} (set LOOM_OPENAI_SPEC, or clone shared/ beside the repo)`);
  }
  const { size, mtimeMs } = statSync(specPath);
  const cached = join(cacheDir(), `openai-openapi-${size}-${Math.trunc(mtimeMs)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8"));
  const spec = withoutNullable(parseYaml(readFileSync(specPath, "utf8"), { maxAliasCount: -1 })) as Json;
  writeAtomically(cached, JSON.stringify(spec));
  return spec;
}

interface Operation {
  readonly pattern: RegExp;
  readonly method: string;
  readonly op: Json;
}

/** Compiles schemas of one (transformed) copy of the definition, lazily, once each. */
function compiler(spec: Json, id: string) {
  const ajv = harnessAjv();
  ajv.addSchema({ $id: id, components: spec.components }, id);
  const cache = new Map<string, (v: unknown) => Problem[]>();
  const compile = (key: string, schema: Json) => {
    let validate = cache.get(key);
    if (!validate) {
      const fn = ajv.compile(schema);
      validate = (v) => (fn(v) ? [] : ajvProblems(fn.errors));
      cache.set(key, validate);
    }
    return validate;
  };
  /** A schema of an operation: a `$ref` into the components, or an inline one (its refs rebased onto the spec). */
  return (schema: Json, where: string, value: unknown): Problem[] =>
    typeof schema.$ref === "string" && schema.$ref.startsWith("#/")
      ? compile(schema.$ref, { $ref: `${id}${schema.$ref}` })(value)
      : compile(where, rebase(schema, id))(value);
}

/**
 * Answers leave unset optional fields as `null` where the definition types them `string` or
 * `integer` (the definition's own examples do: a Batch's `"output_file_id": null`). In answers
 * only, a property that is not `required` may be `null`; requests stay as written.
 */
function optionalNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(optionalNullable);
  if (!node || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = optionalNullable(v);
  if (out.properties && typeof out.properties === "object") {
    const required = new Set(Array.isArray(out.required) ? out.required as string[] : []);
    const props: Json = {};
    for (const [name, schema] of Object.entries(out.properties as Json)) {
      props[name] = required.has(name) ? schema : withoutNullable({ ...(schema as Json), nullable: true });
    }
    out.properties = props;
  }
  return out;
}

/** A thin {@link OpenApiChecks} over an OpenAPI 3.1 file: schemas compiled lazily, once each. */
export function openApiChecks(specPath: string = openAiSpecPath()): OpenApiChecks {
  const spec = loadSpec(specPath);
  const ID = "https://loom.invalid/openai-openapi";
  const requests = compiler(spec, `${ID}/requests`);
  const answers = compiler(optionalNullable(spec) as Json, `${ID}/answers`);
  const operations: Operation[] = [];
  for (const [template, item] of Object.entries(spec.paths as Record<string, Json>)) {
    if (template.includes("?")) continue; // `?beta=true` duplicates: same operation, other docs.
    const pattern = new RegExp(`^${template.replace(/[.*+]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`);
    for (const [method, op] of Object.entries(item)) {
      if (["get", "post", "delete", "put", "patch"].includes(method)) operations.push({ pattern, method: method.toUpperCase(), op: op as Json });
    }
  }
  // Literal templates beat parameterised ones (`/files/{id}/content` vs `/files/{id}`): longest literal first.
  const literal = (o: Operation) => o.pattern.source.replace(/\[\^\/\]\+/g, "").length;
  const find = (method: string, path: string) =>
    operations.filter((o) => o.method === method && o.pattern.test(path)).sort((a, b) => literal(b) - literal(a))[0];
  const errorSchema = { $ref: "#/components/schemas/ErrorResponse" };
  return {
    serves: (method, path) => find(method, path) !== undefined,
    request(method, path, body, contentType = "application/json") {
      const found = find(method, path);
      if (!found) return undefined;
      const content = ((found.op.requestBody as Json | undefined)?.content ?? {}) as Record<string, Json>;
      const media = content[contentType] ?? content["application/json"];
      if (!media) return body === undefined ? [] : [{ path: "", message: `${found.op.operationId} takes no ${contentType} body` }];
      return requests(media.schema as Json, `${found.op.operationId} request ${contentType}`, body);
    },
    response(method, path, status, body) {
      const found = find(method, path);
      if (!found) return undefined;
      const responses = found.op.responses as Record<string, Json>;
      const answer = responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
      if (!answer) {
        // Errors: the definition lists few per operation; every OpenAI error body is an ErrorResponse.
        return status >= 400 ? answers(errorSchema, "error", body) : [{ path: "", message: `${found.op.operationId} documents no ${status} answer` }];
      }
      const resolved = typeof answer.$ref === "string" ? pointerGet(spec, answer.$ref.slice(1)) as Json : answer;
      const media = ((resolved.content ?? {}) as Record<string, Json>)["application/json"];
      if (!media) return [];
      return answers(media.schema as Json, `${found.op.operationId} response ${status}`, body);
    },
    schema: (name, value) => answers({ $ref: `#/components/schemas/${name}` }, name, value),
    requestMembers(method, path) {
      const found = find(method, path);
      const media = ((found?.op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.["application/json"];
      if (!media) return undefined;
      const names = new Set<string>();
      const collect = (node: unknown, seen: Set<string>): void => {
        if (!node || typeof node !== "object") return;
        const n = node as Json;
        if (typeof n.$ref === "string") {
          if (seen.has(n.$ref)) return;
          return collect(pointerGet(spec, n.$ref.slice(1)), new Set([...seen, n.$ref]));
        }
        for (const key of Object.keys((n.properties ?? {}) as Json)) names.add(key);
        for (const k of ["allOf", "anyOf", "oneOf"]) if (Array.isArray(n[k])) for (const s of n[k] as unknown[]) collect(s, seen);
      };
      collect(media.schema, new Set());
      return names;
    },
  };
}

/** Points local `#/…` refs of an inline schema at the spec document. */
function rebase(node: unknown, id: string): Json {
  const walk = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(walk);
    if (!n || typeof n !== "object") return n;
    const out: Json = {};
    for (const [k, v] of Object.entries(n)) out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#") ? `${id}${v}` : walk(v);
    return out;
  };
  return walk(node) as Json;
}

function pointerGet(doc: unknown, pointer: string): unknown {
  return pointer.split("/").slice(1).reduce<unknown>((at, key) => (at as Json)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

/** One violation as the emulator's contract validator reports it (branch i10-contract). */
interface ContractViolation {
  readonly pointer: string;
  readonly message: string;
  readonly keyword?: string;
  readonly params?: Record<string, unknown>;
}

/**
 * The emulator's OpenAPI validator (`scripts/emulator/contract/openapi.ts`, branch i10-contract),
 * described by shape so this module doesn't import it before the branches merge. Targets are
 * `"METHOD /path"`; `operation` throws when the definition has none.
 */
export interface ContractValidatorLike {
  request(target: string, body: unknown): readonly ContractViolation[];
  response(target: string, body: unknown, status?: number): readonly ContractViolation[];
  schema(name: string, value: unknown, direction?: "request" | "answer"): readonly ContractViolation[];
  operation(target: string): unknown;
}

/** Adapts the emulator's validator to {@link OpenApiChecks}, so the harness can use it instead of its own. */
export function fromContractValidator(validator: ContractValidatorLike): OpenApiChecks {
  const served = (target: string) => {
    try {
      validator.operation(target);
      return true;
    } catch {
      return false;
    }
  };
  const problems = (found: readonly ContractViolation[]): Problem[] => {
    const extra = (v: ContractViolation) =>
      v.keyword === "additionalProperties" && v.params?.additionalProperty ? ` (${String(v.params.additionalProperty)})` : "";
    return found.map((v) => ({ path: v.pointer, message: `${v.message}${extra(v)}` }));
  };
  return {
    serves: (method, path) => served(`${method} ${path}`),
    request: (method, path, body) => (served(`${method} ${path}`) ? problems(validator.request(`${method} ${path}`, body)) : undefined),
    response: (method, path, status, body) =>
      served(`${method} ${path}`) ? problems(validator.response(`${method} ${path}`, body, status)) : undefined,
    schema: (name, value) => problems(validator.schema(name, value, "answer")),
  };
}
