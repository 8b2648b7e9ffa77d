/**
 * Finding, loading and normalising OpenAI's published OpenAPI 3.1 definition
 * (`shared/reference/specs/openai-openapi.yaml`, kept beside the repository, never inside it) so
 * that Ajv's JSON Schema 2020-12 validator can compile its component schemas.
 *
 * Spec quirks handled here, each explicitly:
 * 1. **3.0-style `nullable: true`** (110 places) in a 3.1 document, where JSON Schema has no such
 *    keyword: `type: T` becomes `type: [T, "null"]` (and `null` joins an `enum`); a schema without
 *    `type` (a `$ref`, a `oneOf`) becomes `anyOf: [schema, {type: "null"}]`.
 * 2. **`$ref: "#/components/schemas/X"`**: the whole document is registered with Ajv under one id,
 *    so every such pointer resolves inside it; only the schemas a check reaches get compiled.
 * 3. **OpenAPI-only keywords** (`example`, `xml`, `externalDocs`, every `x-*` extension such as
 *    `x-oaiMeta`, `x-stainless-const`, `x-oaiTypeLabel`) are dropped, so Ajv can stay strict
 *    about unknown keywords. `deprecated`, `readOnly`, `writeOnly` are JSON Schema annotations
 *    and stay.
 * 4. **`discriminator`** is kept (Ajv's `discriminator` option picks the branch by the tag, which
 *    also names the right parameter in errors) where it meets Ajv's rules: a `oneOf` whose every
 *    branch declares the tag with `const`/`enum` and requires it. Elsewhere (15 sit on `anyOf`,
 *    some branches lack the tag) it is dropped: the `oneOf`/`anyOf` still validates.
 * 5. **`$recursiveRef: "#"` / `$recursiveAnchor`** (draft 2019-09, in `CompoundFilter`), unknown
 *    to 2020-12: rewritten to a plain `$ref` to the schema itself, which is what "#" means there.
 * 6. **OpenAPI formats** `int64`, `double`, `float`, `binary`, `unixtime` are not JSON Schema
 *    formats: registered as annotations (always valid); `uri` and `date` are checked by
 *    ajv-formats.
 * 7. **Answers carry `null` where the spec types a field string/integer** (a batch's
 *    `output_file_id`, `in_progress_at`…, as the spec's own response examples show). For the
 *    answer direction only, every property whose value is `null` in an operation's own response
 *    example is made nullable, and so are those in {@link OBSERVED_NULLS} (null in answers the real
 *    API gave, quoted in public code) and {@link UNVERIFIED_NULLS} (an empty list page's ids);
 *    `LoadedSpec.answerNullables` lists them all. Requests stay as published.
 * 8. **`oneOf` branches that overlap**: `InputItem` lists both `EasyInputMessage` and
 *    `InputMessage`, and a user message with `input_text` parts is both, so a valid request would
 *    fail "exactly one". `oneOf` is read as `anyOf`, except under a kept discriminator (which
 *    picks exactly one branch by its tag anyway).
 * 9. Response examples are JSON with the odd trailing comma (the `createBatch` example): they are
 *    read leniently, and one that still does not parse contributes nothing.
 * 10. **No `BatchRequestOutput`** (the batch result line) in this release: `openapi.ts` carries it
 *    as earlier releases published it.
 * 11. In `openapi.ts`: the document root's `components` is declared an (empty) Ajv keyword so
 *    the registered document compiles in strict mode; `strictTypes`, `strictRequired` and
 *    `strictTuples` are off: the spec has `discriminator` on schemas without `type: object` and
 *    `required` naming properties another `allOf` branch defines (valid JSON Schema; Ajv's
 *    strict mode only logs it, dozens of lines per compile). Nothing else is relaxed: an unknown
 *    keyword or format would still fail the compile.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { parse } from "yaml";

/** The environment variable that names the spec file, overriding the default place. */
export const SPEC_ENV = "LOOM_OPENAI_SPEC";
const RELATIVE = join("shared", "reference", "specs", "openai-openapi.yaml");

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Where OpenAI's OpenAPI definition is: `$LOOM_OPENAI_SPEC` when set, else
 * `shared/reference/specs/openai-openapi.yaml` beside the repository (`../shared/…` from its
 * root, as CI clones it) or beside one of its parent directories (a git worktree nested below).
 * Throws, naming the places tried, when there is none: contract checks never skip silently.
 */
export function defaultSpecPath(): string {
  const env = process.env[SPEC_ENV];
  if (env) {
    if (!existsSync(env)) {
      throw new Error(`${SPEC_ENV}=${env}: no such file (OpenAI's OpenAPI definition).`);
    }
    return env;
  }
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const tried: string[] = [];
  for (let dir = dirname(repoRoot);; dir = dirname(dir)) {
    const candidate = join(dir, RELATIVE);
    tried.push(candidate);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error(
    `OpenAI's OpenAPI definition was not found (tried ${
      tried.join(", ")
    }). Put the repository beside ` +
      `shared/, set ${SPEC_ENV} to the file's path, or start the emulator with openaiSpec: false ` +
      "(no contract check: what an installed loom-batch, which has no such file, does).",
  );
}

/** One HTTP operation of the spec, with the component schemas of its JSON/multipart body and answer. */
export interface Operation {
  operationId: string;
  method: string;
  /** As the spec writes it, without the `/v1` server prefix: `/chat/completions`. */
  path: string;
  /** Component name of the request body's schema. */
  request?: string;
  /** Component name of the 200 answer's JSON schema. */
  response?: string;
  /** Component name of the 200 answer's `text/event-stream` events. */
  stream?: string;
}

/** The normalised spec: component schemas for each direction, and the operations. */
export interface LoadedSpec {
  path: string;
  /** `{components: {schemas}}` normalised for requests. */
  requestDoc: Json;
  /** The same, with the answer-only nullables of quirk 7. */
  answerDoc: Json;
  operations: Operation[];
  /** Quirk 7: `Schema.property` names made nullable for answers. */
  answerNullables: string[];
  /** Quirk 4: where a discriminator was dropped, as `Schema` paths. */
  droppedDiscriminators: string[];
}

/**
 * Answer fields the spec types non-null that the real API answers with null, beyond those its
 * own examples show: a file object straight from `curl https://api.openai.com/v1/files` shows
 * `"expires_at": null` and `"status_details": null` (an evals walk-through quoting the API's
 * answer; litellm#37527 quotes `"status_details":null` for a batch file).
 */
export const OBSERVED_NULLS = ["OpenAIFile.expires_at", "OpenAIFile.status_details"];

/**
 * unverified: an empty list page's `first_id`/`last_id` (there is no item to name). The
 * definition types them strings (`ListFilesResponse` even requires them) and its examples show
 * only full pages; the emulator answers null, as OpenAI-compatible servers commonly do. Accepted
 * in answers until a published answer of the real API shows an empty page.
 */
export const UNVERIFIED_NULLS = [
  "ListBatchesResponse.first_id",
  "ListBatchesResponse.last_id",
  "ListFilesResponse.first_id",
  "ListFilesResponse.last_id",
];

const loaded = new Map<string, LoadedSpec>();

/** What is cached between processes: everything but the answer copy, which is cheap to derive. */
interface Normalised {
  schemas: Record<string, unknown>;
  operations: Operation[];
  nullables: string[];
  dropped: string[];
}

/**
 * Loads (once per process and path) and normalises the spec. Parsing 3 MB of YAML takes a
 * second or two, so the normalised form is also kept as JSON in the OS temp directory, keyed by
 * the file's path, size and mtime and by this module's own source (a changed normaliser never
 * reads a stale cache).
 */
export function loadSpec(path: string): LoadedSpec {
  const cached = loaded.get(path);
  if (cached) return cached;
  if (!existsSync(path)) throw new Error(`OpenAI's OpenAPI definition not found at ${path}.`);
  const { size, mtimeMs } = statSync(path);
  const self = readFileSync(fileURLToPath(import.meta.url));
  const key = createHash("sha256").update(`${resolve(path)}\0${size}\0${mtimeMs}\0`).update(self)
    .digest("hex").slice(0, 24);
  const cacheFile = join(tmpdir(), `loom-openai-spec-${key}.json`);
  let n: Normalised | undefined;
  try {
    n = JSON.parse(readFileSync(cacheFile, "utf8")) as Normalised;
  } catch {
    n = normaliseDocument(parse(readFileSync(path, "utf8"), { maxAliasCount: -1 }) as Json);
    try {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(n));
      renameSync(tmp, cacheFile); // atomic: a parallel test process reads all of it or none
    } catch { /* a read-only temp dir only costs the parse next time */ }
  }
  const answerSchemas: Record<string, unknown> = { ...n.schemas };
  for (const key of n.nullables) {
    const [name, prop] = key.split(".");
    const target = structuredClone(answerSchemas[name]) as Json;
    const props = target.properties as Record<string, unknown>;
    props[prop] = nullable(props[prop] as Json);
    answerSchemas[name] = target;
  }
  const spec: LoadedSpec = {
    path,
    requestDoc: { components: { schemas: n.schemas } },
    answerDoc: { components: { schemas: answerSchemas } },
    operations: n.operations,
    answerNullables: n.nullables,
    droppedDiscriminators: n.dropped,
  };
  loaded.set(path, spec);
  return spec;
}

function normaliseDocument(doc: Json): Normalised {
  const raw = ((doc.components as Json)?.schemas ?? {}) as Record<string, Json>;
  const operations = readOperations(doc);
  const dropped: string[] = [];
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(raw)) {
    schemas[name] = normalise(schema, name, raw, dropped);
  }
  const nullables = [
    ...new Set([...exampleNulls(doc, operations, raw), ...OBSERVED_NULLS, ...UNVERIFIED_NULLS]),
  ].sort();
  return { schemas, operations, nullables, dropped };
}

const refName = (schema: unknown): string | undefined => {
  const ref = isObject(schema) ? schema.$ref : undefined;
  return typeof ref === "string" && ref.startsWith("#/components/schemas/")
    ? ref.slice(21)
    : undefined;
};

function readOperations(doc: Json): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries((doc.paths ?? {}) as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item)) {
      if (!isObject(op) || typeof op.operationId !== "string") continue;
      const body = ((op.requestBody as Json)?.content ?? {}) as Record<string, Json>;
      const ok = (((op.responses as Json)?.["200"] as Json)?.content ?? {}) as Record<string, Json>;
      out.push({
        operationId: op.operationId,
        method: method.toUpperCase(),
        path,
        request: refName(body["application/json"]?.schema) ??
          refName(body["multipart/form-data"]?.schema),
        response: refName(ok["application/json"]?.schema),
        stream: refName(ok["text/event-stream"]?.schema),
      });
    }
  }
  return out;
}

/** Keys whose value is a map of subschemas. */
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "dependentSchemas"]);
/** Keys whose value is one subschema. */
const SCHEMA_ONE = new Set([
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
  "unevaluatedProperties",
  "unevaluatedItems",
]);
/** Keys whose value is a list of subschemas. */
const SCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);
/** OpenAPI keywords that are not JSON Schema (quirk 3). */
const OPENAPI_ONLY = new Set(["example", "xml", "externalDocs"]);

/** A schema made to accept null too (quirk 1's rewrite). */
function nullable(schema: Json): Json {
  if (schema === undefined) return { type: "null" };
  const { description, title, deprecated, ...rest } = schema;
  if (typeof rest.type === "string" && !rest.anyOf && !rest.oneOf && !rest.allOf) {
    const out: Json = { ...schema, type: [rest.type, "null"] };
    if (Array.isArray(rest.enum) && !rest.enum.includes(null)) out.enum = [...rest.enum, null];
    if ("const" in rest) {
      out.enum = [rest.const, null];
      delete out.const;
    }
    return out;
  }
  if (Array.isArray(rest.type)) {
    return rest.type.includes("null") ? schema : { ...schema, type: [...rest.type, "null"] };
  }
  const out: Json = { anyOf: [rest, { type: "null" }] };
  if (description !== undefined) out.description = description;
  if (title !== undefined) out.title = title;
  if (deprecated !== undefined) out.deprecated = deprecated;
  return out;
}

/** A copy of a component schema that Ajv 2020 compiles (quirks 1, 3, 4, 5, 8). */
function normalise(
  schema: unknown,
  name: string,
  all: Record<string, Json>,
  dropped: string[],
  at = name,
): unknown {
  if (!isObject(schema)) return schema;
  if (Array.isArray(schema.oneOf) && Array.isArray(schema.anyOf)) {
    throw new Error(`${at}: both oneOf and anyOf`);
  }
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (
      key.startsWith("x-") || OPENAPI_ONLY.has(key) || key === "nullable" ||
      key === "$recursiveAnchor"
    ) continue;
    if (key === "$recursiveRef") {
      out.$ref = `#/components/schemas/${name}`; // "#" is the schema that carries $recursiveAnchor
    } else if (key === "discriminator") {
      if (discriminatorFits(schema, all)) {
        out.discriminator = { propertyName: (value as Json).propertyName };
      } else dropped.push(at);
    } else if (SCHEMA_MAPS.has(key) && isObject(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map((
          [k, v],
        ) => [k, normalise(v, name, all, dropped, `${at}.${key}.${k}`)]),
      );
    } else if (SCHEMA_ONE.has(key)) {
      out[key] = normalise(value, name, all, dropped, `${at}.${key}`);
    } else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) {
      const exclusive = key === "oneOf" && isObject(schema.discriminator) &&
        discriminatorFits(schema, all);
      out[key === "oneOf" && !exclusive ? "anyOf" : key] = value.map((v, i) =>
        normalise(v, name, all, dropped, `${at}.${key}[${i}]`)
      );
    } else out[key] = value;
  }
  return schema.nullable === true ? nullable(out) : out;
}

/** Whether Ajv's discriminator accepts this schema: `oneOf`, every branch declaring and requiring the tag. */
function discriminatorFits(schema: Json, all: Record<string, Json>): boolean {
  const d = schema.discriminator as Json;
  const tag = d?.propertyName;
  if (typeof tag !== "string" || d.mapping !== undefined || !Array.isArray(schema.oneOf)) {
    return false;
  }
  return schema.oneOf.every((branch) => {
    const b = refName(branch) ? all[refName(branch)!] : branch;
    if (!isObject(b) || !isObject(b.properties)) return false;
    const prop = (b.properties as Json)[tag];
    const tagged = isObject(prop) && ("const" in prop || Array.isArray(prop.enum));
    return tagged && Array.isArray(b.required) && b.required.includes(tag);
  });
}

/** Parses a response example leniently (quirk 9: trailing commas). */
function parseExample(text: string): unknown {
  try {
    return JSON.parse(text.replace(/,(\s*[}\]])/g, "$1"));
  } catch {
    return undefined;
  }
}

/** Quirk 7: `Schema.property` where an operation's own response example has null and the schema does not allow it. */
function exampleNulls(doc: Json, operations: Operation[], raw: Record<string, Json>): string[] {
  const found = new Set<string>();
  const walk = (
    schema: unknown,
    value: unknown,
    owner: string | undefined,
    depth: number,
  ): void => {
    if (!isObject(schema) || depth > 12) return;
    const ref = refName(schema);
    if (ref) return walk(raw[ref], value, ref, depth + 1);
    for (const sub of (schema.allOf ?? []) as unknown[]) walk(sub, value, owner, depth + 1);
    if (Array.isArray(value) && schema.items) {
      for (const v of value) walk(schema.items, v, owner, depth + 1);
    }
    if (!isObject(value) || !isObject(schema.properties)) return;
    for (const [prop, v] of Object.entries(value)) {
      const sub = (schema.properties as Json)[prop];
      if (!isObject(sub)) continue;
      if (
        v === null && owner && !acceptsNull(sub, raw) &&
        raw[owner]?.properties === schema.properties
      ) {
        found.add(`${owner}.${prop}`);
      } else walk(sub, v, owner, depth + 1);
    }
  };
  for (const op of operations) {
    if (!op.response) continue;
    const item = (doc.paths as Record<string, Json>)[op.path]?.[op.method.toLowerCase()] as Json;
    const examples = ((item?.["x-oaiMeta"] as Json)?.examples ?? []) as unknown;
    for (const ex of Array.isArray(examples) ? examples : [examples]) {
      const text = isObject(ex) ? ex.response : undefined;
      const value = typeof text === "string" ? parseExample(text) : undefined;
      if (value !== undefined) {
        walk({ $ref: `#/components/schemas/${op.response}` }, value, undefined, 0);
      }
    }
  }
  return [...found].sort();
}

/** Whether a (raw) schema accepts null as published (`nullable`, a null type or branch). */
function acceptsNull(schema: Json, raw: Record<string, Json>): boolean {
  if (schema.nullable === true || schema.type === "null") return true;
  if (Array.isArray(schema.type) && schema.type.includes("null")) return true;
  const ref = refName(schema);
  if (ref && raw[ref]) return acceptsNull(raw[ref], raw);
  return [...((schema.anyOf ?? []) as Json[]), ...((schema.oneOf ?? []) as Json[])].some((s) =>
    acceptsNull(s, raw)
  );
}
