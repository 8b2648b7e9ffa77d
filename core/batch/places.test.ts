import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "../test-support/temp.ts";
import { localized } from "./places.ts";
import type { JobRecord } from "./store.ts";

/** A record as machine A (working in `root`) wrote it. */
function recordFrom(root: string): JobRecord {
  return {
    version: 2,
    id: "20261204-abcdef",
    key: "k",
    createdAt: "2026-12-04T00:00:00.000Z",
    updatedAt: "2026-12-04T00:00:00.000Z",
    status: "pending",
    jobFile: join(root, "jobs", "job.yaml"),
    root,
    host: "here",
    spec: {
      dataset: { path: join(root, "data", "in.csv") },
      output: { path: join(root, "out", "res.csv") },
      provider: "echo",
      model: "m",
      plugins: [join(root, "plugins", "acme.ts"), "loom-plugin-x"],
    } as JobRecord["spec"],
    input: { path: join(root, "data", "in.csv"), size: 3, sha256: "x" },
    output: join(root, "out", "res.csv"),
    rows: 1,
    shards: [],
    written: { dev: 1, ino: 2, size: 3, mtimeMs: 4 },
  };
}

describe("a job's files on another machine", () => {
  it("moves every path under the submitter's working directory onto this one's", () => {
    const a = tempDir("loom-places-a-");
    const b = tempDir("loom-places-b-");
    mkdirSync(join(b, "data"));
    writeFileSync(join(b, "data", "in.csv"), "id\n");
    const here = localized(recordFrom(a), b, "here");
    assert.equal(here.input.path, join(b, "data", "in.csv"));
    assert.equal(here.spec.dataset.path, join(b, "data", "in.csv"));
    assert.equal(here.spec.output?.path, join(b, "out", "res.csv"));
    assert.equal(here.output, join(b, "out", "res.csv"));
    assert.equal(here.jobFile, join(b, "jobs", "job.yaml"));
    assert.deepEqual(here.spec.plugins, [join(b, "plugins", "acme.ts"), "loom-plugin-x"]);
    assert.equal(here.root, b);
    assert.equal(here.written, undefined, "the file A wrote is not the one here");
    assert.equal(here.input.sha256, "x", "the fingerprint still has to match");
  });

  it("leaves the record as it is where the input is, or where it is not found either", () => {
    const a = tempDir("loom-places-a-");
    const b = tempDir("loom-places-b-");
    assert.equal(localized(recordFrom(a), b, "here").input.path, join(a, "data", "in.csv"));
    mkdirSync(join(a, "data"));
    writeFileSync(join(a, "data", "in.csv"), "id\n");
    mkdirSync(join(b, "data"));
    writeFileSync(join(b, "data", "in.csv"), "id\n");
    const record = recordFrom(a);
    assert.equal(localized(record, b, "here"), record, "the recorded input exists: nothing moves");
    const there = localized(record, b, "another");
    assert.equal(there.input.path, join(b, "data", "in.csv"), "another machine uses its own");
    assert.equal(
      localized({ ...record, root: undefined }, b, "here").input.path,
      record.input.path,
    );
  });
});
