import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomError, LoomJobError, LoomUsageError } from "./errors.ts";

describe("errors", () => {
  it("recognises Loom errors by marker and keeps exit codes", () => {
    const e = new LoomUsageError("bad flag");
    assert.ok(LoomError.isInstance(e));
    assert.equal(e.exitCode, 2);
    assert.ok(!LoomError.isInstance(new Error("x")));
  });
  it("lists every job issue with its place", () => {
    const e = new LoomJobError([
      { where: "job.yaml:3:5", path: "model", message: "model must be a string" },
      { where: "--workers", path: "sync.workers", message: "Invalid value" },
    ]);
    assert.match(e.message, /2 problems/);
    assert.match(e.message, /job\.yaml:3:5: model: model must be a string/);
    assert.match(e.message, /--workers: sync\.workers: Invalid value/);
  });
});
