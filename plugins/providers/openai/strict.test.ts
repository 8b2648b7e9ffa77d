/**
 * OpenAI strict mode against the emulator: what the strict subset refuses is refused by the
 * emulator as the API does (400 invalid_json_schema), Loom sends such a schema without strict
 * (and the run succeeds, Loom checking the answers), a schema within the subset goes strict, and
 * `loom plan` says which mode the job gets and why.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import OpenAI from "openai";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { runCli } from "../../../core/test-support/run-cli.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { useEmulator } from "../_shared/test-emulator.ts";
import { strictVerdict } from "./strict.ts";

const t = useEmulator({ provider: "openai" });

type Schema = Record<string, unknown>;

/** A closed object schema around `props` (all required), with `extra` keys at the root. */
function closed(props: Record<string, Schema>, extra: Schema = {}): Schema {
  return {
    type: "object",
    properties: props,
    required: Object.keys(props),
    additionalProperties: false,
    ...extra,
  };
}

/** `depth` objects nested in one another, each holding the next under `n`. */
function nested(depth: number): Schema {
  return depth === 1 ? closed({ leaf: { type: "string" } }) : closed({ n: nested(depth - 1) });
}

/**
 * Schemas strict mode refuses, each with the context and keyword of the refusal, and a schema
 * whose sample answer also satisfies the construct (so a non-strict run succeeds).
 */
const REFUSED: Array<{ name: string; schema: Schema; message: RegExp; loomRefuses?: boolean }> = [
  {
    name: "allOf",
    schema: closed({ a: { type: "string", allOf: [{ minLength: 1 }] } }),
    message: /In context=\('properties', 'a'\), 'allOf' is not permitted\.$/,
  },
  {
    name: "not",
    schema: closed({ a: { type: "string", not: { const: "x" } } }),
    message: /In context=\('properties', 'a'\), 'not' is not permitted\.$/,
  },
  {
    name: "if/then",
    schema: closed({ a: { type: "string", if: { const: "x" }, then: { maxLength: 1 } } }),
    message: /'if' is not permitted\.$/,
  },
  {
    name: "dependentRequired",
    schema: closed({ a: { type: "string" } }, { dependentRequired: { a: ["a"] } }),
    message: /In context=\(\), 'dependentRequired' is not permitted\.$/,
  },
  {
    name: "dependentSchemas",
    schema: closed({ a: { type: "string" } }, { dependentSchemas: { a: { required: ["a"] } } }),
    message: /'dependentSchemas' is not permitted\.$/,
  },
  {
    name: "patternProperties",
    schema: closed({ a: { type: "string" } }, { patternProperties: { "^x": { type: "string" } } }),
    message: /'patternProperties' is not permitted\.$/,
  },
  {
    name: "propertyNames",
    schema: closed({ a: { type: "string" } }, { propertyNames: { pattern: "^[a-z]+$" } }),
    message: /'propertyNames' is not permitted\.$/,
  },
  {
    name: "unevaluatedProperties",
    schema: closed({ a: { type: "string" } }, { unevaluatedProperties: false }),
    message: /'unevaluatedProperties' is not permitted\.$/,
  },
  {
    name: "minProperties",
    schema: closed({ a: { type: "string" } }, { minProperties: 1 }),
    message: /'minProperties' is not permitted\.$/,
  },
  {
    name: "oneOf",
    schema: closed({ a: { oneOf: [{ type: "string" }, { type: "integer" }] } }),
    message: /'oneOf' is not permitted\.$/,
  },
  {
    name: "uniqueItems",
    schema: closed({ a: { type: "array", items: { type: "string" }, uniqueItems: true } }),
    message: /In context=\('properties', 'a'\), 'uniqueItems' is not permitted\.$/,
  },
  {
    name: "default",
    schema: closed({ a: { type: "string", default: "x" } }),
    message: /In context=\('properties', 'a'\), 'default' is not permitted\.$/,
  },
  {
    name: "format uri",
    schema: closed({ a: { type: "string", format: "uri" } }),
    message: /In context=\('properties', 'a'\), 'uri' is not a supported format/,
  },
  {
    name: "anyOf at the root",
    schema: { anyOf: [closed({ a: { type: "string" } })] },
    message: /schema must be a JSON Schema of 'type: "object"'/,
    loomRefuses: true,
  },
  { name: "nesting", schema: nested(11), message: /more than 10 levels of nesting/ },
  {
    name: "enum size",
    schema: closed({
      a: { type: "string", enum: Array.from({ length: 1001 }, (_, i) => `v${i}`) },
    }),
    message: /1001 enum values; at most 1000/,
  },
  {
    name: "an open object",
    schema: closed({
      a: { type: "object", properties: { b: { type: "string" } }, required: ["b"] },
    }),
    message:
      /In context=\('properties', 'a'\), 'additionalProperties' is required to be supplied and to be false\.$/,
  },
  {
    name: "an optional property",
    schema: { ...closed({ a: { type: "string" }, b: { type: "string" } }), required: ["a"] },
    message: /Missing 'b'\.$/,
  },
];

/** Within the subset: every documented keyword, a nullable field, anyOf below the root, recursion. */
const STRICT_SCHEMA: Schema = {
  type: "object",
  title: "Review",
  description: "A product review, classified.",
  properties: {
    label: { type: "string", enum: ["good", "bad"], description: "overall verdict" },
    code: { type: "string", pattern: "\\S" },
    when: { type: "string", format: "date-time" },
    score: { type: "number", minimum: 0, maximum: 10, multipleOf: 0.5 },
    rank: { type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 100 },
    tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 3 },
    note: { type: ["string", "null"] },
    value: { anyOf: [{ type: "string" }, { type: "number" }] },
    kind: { const: "review" },
    tree: { $ref: "#/$defs/node" },
  },
  required: ["label", "code", "when", "score", "rank", "tags", "note", "value", "kind", "tree"],
  additionalProperties: false,
  $defs: {
    node: {
      type: "object",
      properties: {
        name: { type: "string" },
        children: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 0 },
      },
      required: ["name", "children"],
      additionalProperties: false,
    },
  },
};

const client = () => new OpenAI({ apiKey: t.emu.apiKey, baseURL: t.emu.baseURL, maxRetries: 0 });

function ask(schema: Schema, strict: boolean) {
  return client().chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "classify" }],
    response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict } },
  });
}

/** A sync job with `schema` at the emulator; returns its directory, a runner and the rows. */
function job(schema: Schema) {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: t.emu.apiKey };
  writeFileSync(join(dir, "in.csv"), "id,text\n1,first prompt\n");
  writeFileSync(join(dir, "schema.json"), JSON.stringify(schema));
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openai\nprovider_options: { base_url: "${t.emu.baseURL}" }\n` +
      `model: gpt-4o-mini\nmode: sync\nschema: schema.json\noutput: { path: out.csv }\nsync: { cache: false }\n`,
  );
  const warnings: string[] = [];
  const run = async () =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), {
      env,
      cwd: dir,
      force: true,
      onEvent: (e) => {
        if (e.type === "note") warnings.push(e.message);
      },
    });
  const rows = () =>
    parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[];
  return { dir, env, run, rows, warnings };
}

/** The `strict` flag of the one chat request the emulator received. */
function sentStrict(): unknown {
  const [call] = t.emu.log.find("POST /v1/chat/completions");
  return (call.body as { response_format: { json_schema: { strict: unknown } } }).response_format
    .json_schema.strict;
}

describe("OpenAI strict mode", () => {
  for (const { name, schema, message, loomRefuses } of REFUSED) {
    const loom = loomRefuses ? "" : "; Loom sends it without strict and the run succeeds";
    it(`${name}: the emulator refuses it in strict mode${loom}`, async () => {
      await assert.rejects(ask(schema, true), (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.code, "invalid_json_schema");
        assert.equal(e.param, "response_format");
        const text = (e.error as { message: string }).message;
        assert.match(text, /^Invalid schema for response_format 'answer': /);
        assert.match(text, message);
        return true;
      });
      // Loom's own rule (an answer schema is an object) refuses it before any provider looks.
      if (loomRefuses) return;
      t.emu.log.clear();
      const run = job(schema);
      const summary = await run.run();
      assert.deepEqual([summary.ok, summary.errors], [1, 0], JSON.stringify(run.rows()));
      assert.equal(sentStrict(), false);
      assert.equal(run.warnings.length, 1);
      assert.match(
        run.warnings[0],
        /^openai: the answer schema is sent without strict mode, as guidance \(Loom checks each answer against it\), because strict mode does not accept: /,
      );
    });
  }

  it("a schema within the documented subset goes strict: the emulator takes it, and so does the run", async () => {
    const answer = await ask(STRICT_SCHEMA, true);
    assert.equal(typeof JSON.parse(answer.choices[0].message.content!).label, "string");
    t.emu.log.clear();
    const run = job(STRICT_SCHEMA);
    const summary = await run.run();
    assert.deepEqual([summary.ok, summary.errors], [1, 0], JSON.stringify(run.rows()));
    assert.equal(sentStrict(), true);
    assert.deepEqual(run.warnings, [
      "openai: the answer schema is sent in strict mode: OpenAI guarantees every answer matches it",
    ]);
  });

  it("a root $schema (a schema generator's dialect line) is left out of what is sent, so the schema goes strict", async () => {
    const schema = closed({ a: { type: "string" } }, {
      $schema: "https://json-schema.org/draft/2020-12/schema",
    });
    await assert.rejects(
      ask(schema, true),
      (e: unknown) =>
        e instanceof OpenAI.BadRequestError && /'\$schema' is not permitted\.$/.test(e.message),
    );
    t.emu.log.clear();
    const run = job(schema);
    assert.deepEqual([(await run.run()).ok, sentStrict()], [1, true]);
    const [call] = t.emu.log.find("POST /v1/chat/completions");
    const sent =
      (call.body as { response_format: { json_schema: { schema: Schema } } }).response_format
        .json_schema.schema;
    assert.deepEqual(sent, closed({ a: { type: "string" } }));
  });

  it("loom plan lists the mode and the reasons, placed in the schema", async () => {
    const schema = closed({
      a: { type: "string", allOf: [{ minLength: 1 }] },
      b: { type: "string", default: "x" },
    });
    const { dir, env } = job(schema);
    const result = await runCli(["plan", "job.yaml"], { cwd: dir, env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /note: the answer schema is sent without strict mode, as guidance \(Loom checks each answer against it\), because strict mode does not accept: allOf at \/properties\/a; default at \/properties\/b\n/,
    );
    assert.equal(t.emu.log.count("POST /v1/chat/completions"), 0, "plan sends nothing");
    const strict = job(STRICT_SCHEMA);
    const planned = await runCli(["plan", "job.yaml"], { cwd: strict.dir, env: strict.env });
    assert.match(
      planned.stdout,
      /note: the answer schema is sent in strict mode: OpenAI guarantees every answer matches it\n/,
    );
  });
});

describe("the strict verdict's reasons", () => {
  it("names each construct and where it is, as a JSON Pointer", () => {
    assert.deepEqual(strictVerdict(STRICT_SCHEMA), { strict: true, reasons: [] });
    assert.deepEqual(
      strictVerdict({
        type: "object",
        properties: {
          "a/b": { type: "string", minLength: 2 },
          c: { type: "object", properties: { d: { type: "integer" } } },
        },
        required: ["a/b"],
        additionalProperties: false,
        if: { required: ["c"] },
      }).reasons,
      [
        "if at the root",
        "optional properties (c) at the root",
        "minLength at /properties/a~1b",
        "additionalProperties is not false at /properties/c",
        "optional properties (d) at /properties/c",
      ],
    );
    assert.deepEqual(strictVerdict({ type: "array", items: { type: "string" } }).reasons, [
      "the root is not an object",
    ]);
    assert.deepEqual(
      strictVerdict(closed({ t: { type: "array", items: [{ type: "string" }] } })).reasons,
      ["items as a list (a tuple) at /properties/t"],
    );
    assert.deepEqual(
      strictVerdict(closed({ a: { type: "string", format: "uri" }, b: true as unknown as Schema }))
        .reasons,
      [
        'format "uri" at /properties/a',
        "a boolean schema at /properties/b",
      ],
    );
    assert.deepEqual(strictVerdict(nested(11)).reasons, [
      "more than 10 levels of nested objects at /properties/n/properties/n/properties/n/properties/n/properties/n/properties/n/properties/n/properties/n/properties/n/properties/n",
    ]);
  });
});
