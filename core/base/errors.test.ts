import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomError, LoomJobError, LoomUsageError, systemFaultMessage } from "./errors.ts";

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
  it("turns operational faults into one line that names the path and what to do", () => {
    const fault = (code: string, syscall?: string, path?: string) =>
      Object.assign(new Error(`${code}: something, ${syscall} '${path}'`), {
        code,
        errno: -1,
        ...(syscall ? { syscall } : {}),
        ...(path ? { path } : {}),
      });
    assert.equal(
      systemFaultMessage(fault("ENOSPC", "write", "/data/out.csv"), "/home/u/.loom"),
      "cannot write /data/out.csv: the disk is full [ENOSPC]; free some space and run the command again",
    );
    assert.equal(
      systemFaultMessage(fault("EROFS", "mkdir", "/home/u/.loom/jobs"), "/home/u/.loom"),
      "cannot create the folder /home/u/.loom/jobs: the filesystem is read-only [EROFS]; fix it, or set LOOM_HOME (now /home/u/.loom) to another folder",
    );
    assert.equal(
      systemFaultMessage(fault("ENOSPC", "open", "/home/u/.loom/cache/v1/ab/x"), "/home/u/.loom"),
      "cannot open /home/u/.loom/cache/v1/ab/x: the disk is full [ENOSPC]; free some space and run the command again (LOOM_HOME is /home/u/.loom)",
    );
    // A sibling folder whose name starts like LOOM_HOME is not under it.
    assert.doesNotMatch(
      systemFaultMessage(fault("EACCES", "open", "/home/u/.loom2/x"), "/home/u/.loom")!,
      /LOOM_HOME/,
    );
    assert.match(
      systemFaultMessage(fault("EMFILE"))!,
      /^too many open files \[EMFILE\]; raise the limit \(ulimit -n\)/,
    );
    // Found in the cause chain; an error that is not the system's is left to the caller.
    assert.match(
      systemFaultMessage(new Error("wrapped", { cause: fault("EACCES", "rename", "/x") }))!,
      /^cannot rename \/x: permission denied \[EACCES\]/,
    );
    assert.equal(systemFaultMessage(new TypeError("x is undefined")), undefined);
    assert.equal(
      systemFaultMessage(Object.assign(new Error("odd"), { code: "ERR_SOMETHING" })),
      undefined,
    );
  });
});
