import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import * as v from "valibot";
import { BUILTIN_PLUGINS } from "../../plugins/_builtins.ts";
import { DEFAULT_WORKERS } from "../run/sync-run.ts";
import { jobJsonSchema, jobJsonSchemaText } from "./json-schema.ts";
import { JobSchema } from "./schema.ts";

interface Node {
  description?: string;
  default?: unknown;
  examples?: unknown[];
  properties?: Record<string, Node>;
  anyOf?: Node[];
  required?: string[];
  enum?: string[];
}

/** Every key of the schema with its path (`sync.workers`), groups and their keys alike. */
function keysOf(node: Node, path: string[] = []): Array<[string[], Node]> {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => [
    [[...path, key], child] as [string[], Node],
    ...keysOf(child, [...path, key]),
  ]);
}

/**
 * The smallest valid job with `value` set at `path`; a group on the way gets its other required
 * keys from their own default or first example (`cost.prices` needs input and output).
 */
function jobWith(schema: Node, path: string[], value: unknown): Record<string, unknown> {
  const job: Record<string, unknown> = {
    dataset: { path: "in.csv" },
    provider: "echo",
    model: "m",
  };
  let at = job;
  let node = schema;
  for (const key of path.slice(0, -1)) {
    node = node.properties![key];
    at = (at[key] ??= {}) as Record<string, unknown>;
    for (const required of node.required ?? []) {
      const sibling = node.properties![required];
      at[required] ??= sibling.default ?? sibling.examples?.[0];
    }
  }
  at[path.at(-1)!] = value;
  return job;
}

/** The checked-in schema, found from here whether the test runs from source or from dist/. */
function checkedInFile(): string {
  // The cast: Deno checks this file without the Node types that declare import.meta.url.
  let dir = dirname(fileURLToPath((import.meta as ImportMeta & { url: string }).url));
  while (!existsSync(join(dir, "jobs", "loom.schema.json"))) {
    if (dirname(dir) === dir) throw new Error("cannot find jobs/loom.schema.json above this test");
    dir = dirname(dir);
  }
  return join(dir, "jobs", "loom.schema.json");
}

describe("jobs/loom.schema.json", () => {
  it("is what scripts/gen-schema.ts generates from the job schema", async () => {
    const checkedIn = await readFile(checkedInFile(), "utf8");
    assert.equal(checkedIn, jobJsonSchemaText(), "stale: run deno run -A scripts/gen-schema.ts");
  });

  it("is a titled draft-07 schema that rejects unknown keys", () => {
    const schema = jobJsonSchema() as {
      $schema: string;
      title: string;
      additionalProperties: unknown;
      required: string[];
      properties: Record<
        string,
        { additionalProperties?: unknown; description?: string; not?: unknown }
      >;
    };
    assert.equal(schema.$schema, "http://json-schema.org/draft-07/schema#");
    assert.equal(schema.title, "Loom job file");
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(schema.required, ["dataset", "provider", "model"]);
    for (const key of ["dataset", "prompt", "output", "sync"]) {
      assert.equal(schema.properties[key].additionalProperties, false, key);
    }
    // params is a loose object: extra generation parameters pass through to the provider.
    assert.notEqual(schema.properties.params.additionalProperties, false);
    assert.deepEqual(schema.properties.prompt.not, { required: ["column", "template"] });
    assert.match(schema.properties.model.description ?? "", /Model id/);
  });

  it("describes every key, groups included", () => {
    const keys = keysOf(jobJsonSchema() as Node);
    assert.ok(keys.length > 30, `only ${keys.length} keys`);
    const bare = keys.filter(([, node]) => !(node.description ?? "").trim()).map(([p]) => p);
    assert.deepEqual(bare, [], "keys without a description");
  });

  it("has defaults and examples that Loom itself accepts, and the defaults Loom applies", () => {
    const schema = jobJsonSchema() as Node;
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(schema);
    const keys = keysOf(schema);
    const given = keys.flatMap(([path, node]) =>
      [node.default, ...(node.examples ?? [])].filter((x) => x !== undefined).map((value) =>
        [path, value] as const
      )
    );
    assert.ok(given.length > 15, `only ${given.length} defaults and examples`);
    for (const [path, value] of given) {
      const job = jobWith(schema, path, value);
      const where = `${path.join(".")}: ${JSON.stringify(value)}`;
      assert.ok(v.safeParse(JobSchema, job).success, `Loom refuses ${where}`);
      assert.ok(validate(job), `the schema refuses ${where}: ${ajv.errorsText(validate.errors)}`);
    }
    const defaults = Object.fromEntries(
      keys.filter(([, n]) => n.default !== undefined).map(([p, n]) => [p.join("."), n.default]),
    );
    // What the run code applies when the key is absent (core/run/sync-run.ts, core/commands/run.ts).
    assert.equal(defaults["sync.workers"], DEFAULT_WORKERS);
    assert.equal(defaults["sync.cache"], true);
    assert.equal(defaults.mode, "batch");
    assert.equal(defaults["prompt.column"], "prompt");
    assert.equal(defaults["output.with_meta"], false);
  });

  it("lists the built-in providers and formats, and still takes a plugin's name", () => {
    const schema = jobJsonSchema() as Node;
    const validate = new Ajv({ strict: false }).compile(schema);
    const provider = schema.properties!.provider;
    const format = schema.properties!.dataset.properties!.format;
    assert.deepEqual(provider.anyOf?.[0].enum, Object.keys(BUILTIN_PLUGINS.provider).sort());
    assert.deepEqual(format.anyOf?.[0].enum, Object.keys(BUILTIN_PLUGINS.format).sort());
    assert.ok(validate(jobWith(schema, ["provider"], "acme")), "a plugin's provider");
    assert.ok(validate(jobWith(schema, ["dataset", "format"], "tsv")), "a plugin's format");
    assert.ok(!validate(jobWith(schema, ["provider"], "")), "an empty provider name");
    assert.ok(!validate(jobWith(schema, ["sync", "workers"], 0)), "0 workers");
  });
});
