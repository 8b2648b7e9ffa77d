import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { jobJsonSchema, jobJsonSchemaText } from "./json-schema.ts";

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
});
