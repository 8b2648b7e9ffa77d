import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { defaultOutputPath, removeStaleTemps, writeFileAtomic } from "./output.ts";
import { tempDir } from "./test-support/temp.ts";

describe("defaultOutputPath", () => {
  it("names the output after the input, provider and model, beside the input", () => {
    assert.equal(defaultOutputPath("/d/data.csv", "openai", "gpt-4o-mini"), "/d/data_results_openai_gpt-4o-mini.csv");
    assert.equal(defaultOutputPath("/d/data.csv.gz", "openai", "gpt-4o-mini"), "/d/data_results_openai_gpt-4o-mini.csv");
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
