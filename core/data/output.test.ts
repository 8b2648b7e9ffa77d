import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  linkSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { EXIT, LoomError, LoomUsageError } from "../base/errors.ts";
import {
  checkOutputPath,
  defaultOutputPath,
  removeStaleTemps,
  sameFile,
  writeFileAtomic,
} from "./output.ts";
import { tempDir } from "../test-support/temp.ts";

describe("defaultOutputPath", () => {
  it("names the output after the input, provider and model, beside the input", () => {
    assert.equal(
      defaultOutputPath("/d/data.csv", "openai", "gpt-4o-mini"),
      "/d/data_results_openai_gpt-4o-mini.csv",
    );
    assert.equal(
      defaultOutputPath("/d/data.csv.gz", "openai", "gpt-4o-mini"),
      "/d/data_results_openai_gpt-4o-mini.csv",
    );
    assert.equal(defaultOutputPath("/d/rows.jsonl.GZ", "p", "m"), "/d/rows_results_p_m.jsonl");
    assert.equal(
      defaultOutputPath("/d/a.b.json", "openrouter", "meta-llama/llama-3.1:free"),
      "/d/a.b_results_openrouter_meta-llama_llama-3.1_free.json",
    );
    assert.equal(defaultOutputPath("/d/noext", "p", "a b\\c"), "/d/noext_results_p_a_b_c");
  });
});

describe("writeFileAtomic", () => {
  it("writes the whole file and leaves no temporary file", async () => {
    const dir = tempDir();
    const path = join(dir, "sub", "out.csv");
    async function* chunks() {
      yield "a,b\n";
      yield "1,2\n";
    }
    await writeFileAtomic(path, chunks());
    assert.equal(readFileSync(path, "utf8"), "a,b\n1,2\n");
    assert.deepEqual(readdirSync(join(dir, "sub")), ["out.csv"]);
  });

  it("keeps the old file and removes the temporary one when writing fails midway", async () => {
    const dir = tempDir();
    const path = join(dir, "out.csv");
    writeFileSync(path, "old\n");
    async function* failing() {
      yield "new,partial\n";
      throw new Error("provider exploded");
    }
    await assert.rejects(() => writeFileAtomic(path, failing()), /provider exploded/);
    assert.equal(readFileSync(path, "utf8"), "old\n");
    assert.deepEqual(readdirSync(dir), ["out.csv"]);
  });

  it("sweeps temporary files of dead processes, not of live ones", async () => {
    const dir = tempDir();
    const path = join(dir, "out.csv");
    const dead = join(dir, ".out.csv.999999999.loom-tmp");
    const live = join(dir, `.out.csv.${process.pid}.loom-tmp`);
    writeFileSync(dead, "half");
    writeFileSync(live, "half");
    await removeStaleTemps(path);
    assert.ok(!existsSync(dead));
    assert.ok(existsSync(live));
  });
});

describe("writeFileAtomic on a full disk", () => {
  it("fails (Node's short write left a truncated output, reported as written), says the disk is full and what to do, and leaves nothing behind", async (t) => {
    const dir = tempDir();
    const mounted =
      spawnSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir], { stdio: "ignore" })
        .status === 0;
    if (!mounted) return t.skip("cannot mount a tmpfs here");
    try {
      writeFileSync(join(dir, "filler"), "x".repeat(12 * 1024));
      const path = join(dir, "out.csv");
      await assert.rejects(writeFileAtomic(path, ["a,b\n".repeat(4096)]), (e: unknown) => {
        assert.ok(LoomError.isInstance(e), String(e));
        assert.equal(
          e.message,
          `cannot write ${path}: the disk is full [ENOSPC]; free some space and run the command again`,
        );
        return true;
      });
      assert.deepEqual(readdirSync(dir), ["filler"]);
    } finally {
      spawnSync("umount", [dir], { stdio: "ignore" });
    }
  });
});

describe("checkOutputPath: writability, for real", () => {
  it("refuses a folder where no file can be created, even when access() says it is writable", async () => {
    // sysfs refuses new files even to root, while access(W_OK) grants root everything: the
    // same gap as Deno's check on a read-only filesystem (it looked at mode bits only).
    if (!existsSync("/sys/kernel")) return;
    await assert.rejects(checkOutputPath("/sys/kernel/out.csv"), (e: unknown) => {
      assert.ok(LoomError.isInstance(e), String(e));
      assert.match(e.message, /cannot write an output in \/sys\/kernel/);
      return true;
    });
  });

  it("refuses a read-only filesystem (a read-only tmpfs, where the machine lets the test mount one)", async (t) => {
    const dir = tempDir();
    const mounted =
      spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir], { stdio: "ignore" })
        .status === 0;
    if (!mounted) return t.skip("cannot mount a read-only tmpfs here");
    try {
      // An operational fault, not a usage error: one line naming the folder and what to do
      // (exit code 1, as for any read-only disk), and not the name of Loom's probe file.
      await assert.rejects(checkOutputPath(join(dir, "out.csv")), (e: unknown) => {
        assert.ok(LoomError.isInstance(e) && !(e instanceof LoomUsageError), String(e));
        assert.equal(e.exitCode, EXIT.failed);
        assert.equal(
          e.message,
          `cannot write an output in ${dir}: the filesystem is read-only [EROFS]; ` +
            "choose a writable place (--output or output.path)",
        );
        return true;
      });
    } finally {
      spawnSync("umount", [dir], { stdio: "ignore" });
    }
  });

  it("leaves nothing behind in a writable folder", async () => {
    const dir = tempDir();
    assert.equal(await checkOutputPath(join(dir, "sub", "out.csv")), join(dir, "sub", "out.csv"));
    assert.deepEqual(readdirSync(join(dir, "sub")), []);
  });
});

describe("sameFile", () => {
  it("knows a file through a symbolic or a hard link, and tells different files apart", async () => {
    const dir = tempDir();
    const input = join(dir, "in.csv");
    writeFileSync(input, "a\n1\n");
    writeFileSync(join(dir, "other.csv"), "a\n1\n");
    symlinkSync(input, join(dir, "soft.csv"));
    linkSync(input, join(dir, "hard.csv"));
    assert.equal(await sameFile(join(dir, "soft.csv"), input), true);
    assert.equal(await sameFile(join(dir, "hard.csv"), input), true);
    assert.equal(await sameFile(join(dir, "other.csv"), input), false);
    assert.equal(await sameFile(join(dir, "missing.csv"), input), false);
  });
});
