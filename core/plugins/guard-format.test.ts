/**
 * A third-party format's own bugs are named (format, module, what to throw instead); errors that
 * only pass through it, and its `LoomDataError`s, go up unchanged. Through the registry, with a
 * real plugin module, and through the CLI.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LoomDataError, LoomPluginError } from "../base/errors.ts";
import type { FormatV1, OutputRow } from "../spec/format.ts";
import { runCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import { Registry } from "./registry.ts";

const context = { env: {}, home: "/nonexistent" };

/** Loom's errors module, as this test runs: the sources (Deno) or the build (Node). */
const ERRORS =
  new URL(`../base/errors${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href;

/**
 * A line format (`key=value` records) whose reader throws a plain Error on a line without "=",
 * a LoomDataError on a line "!", and passes on what its input and its rows throw.
 */
const PLUGIN = `
import { LoomDataError } from "${ERRORS}";
export default { apiVersion: 1, kind: "format", name: "kv", create: () => ({
  specificationVersion: "loom.format.v1", name: "kv", extensions: [".kv"],
  async open(input, { path }) {
    const text = [];
    for await (const chunk of input) text.push(new TextDecoder().decode(chunk));
    const lines = text.join("").split("\\n").filter(Boolean);
    async function* rows() {
      for (const [index, line] of lines.entries()) {
        if (line === "!") throw new LoomDataError(path + ":" + (index + 1) + ": a bang");
        if (!line.includes("=")) throw new Error("no = in " + line);
        const [k, v] = line.split("=");
        yield { index, line: index + 1, fields: { [k]: v } };
      }
    }
    return { layout: {}, rows: rows() };
  },
  async *write(rows) { for await (const r of rows) yield JSON.stringify(r.added) + "\\n"; },
}) };
`;

async function kv(): Promise<FormatV1> {
  const dir = tempDir();
  writeFileSync(join(dir, "kv.mjs"), PLUGIN);
  const registry = new Registry();
  await registry.load("./kv.mjs", dir);
  return await registry.create("format", "kv", {}, context);
}

async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(text);
}

async function readAll(format: FormatV1, input: AsyncIterable<Uint8Array>) {
  const reader = await format.open(input, { path: "in.kv" });
  const rows = [];
  for await (const row of reader.rows) rows.push(row.fields);
  return rows;
}

describe("a plugin format's errors", () => {
  it("reads as the format does", async () => {
    assert.deepEqual(await readAll(await kv(), bytes("a=1\nb=2\n")), [{ a: "1" }, { b: "2" }]);
  });

  it("its own bug: a LoomPluginError naming the format, its module and what to throw", async () => {
    await assert.rejects(readAll(await kv(), bytes("a=1\noops\n")), (error: unknown) => {
      assert.ok(error instanceof LoomPluginError, String(error));
      assert.equal(
        error.message,
        "format kv (./kv.mjs) failed: no = in oops (a format reports bad input with LoomDataError " +
          "from loom-batch/plugin, naming the file and line)",
      );
      return true;
    });
  });

  it("its LoomDataError, a failed read of the file and a failure of the rows written pass as they are", async () => {
    const format = await kv();
    await assert.rejects(readAll(format, bytes("!\n")), (error: unknown) => {
      assert.ok(error instanceof LoomDataError);
      assert.equal((error as Error).message, "in.kv:1: a bang");
      return true;
    });
    const unreadable = new Error("EIO: the disk went away");
    // deno-lint-ignore require-yield
    async function* failing(): AsyncGenerator<Uint8Array> {
      throw unreadable;
    }
    await assert.rejects(readAll(format, failing()), (error: unknown) => error === unreadable);
    const interrupted = new Error("interrupted");
    async function* rows(): AsyncGenerator<OutputRow> {
      yield { row: { index: 0, line: 1, fields: {} }, added: { x: 1 } };
      throw interrupted;
    }
    const written: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const text of format.write(rows(), { layout: {}, added: ["x"] })) {
          written.push(text);
        }
      })(),
      (error: unknown) => error === interrupted,
    );
    assert.deepEqual(written, ['{"x":1}\n']);
  });

  it("loom run: one line naming the plugin, exit 2, no stack trace", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "kv.mjs"), PLUGIN);
    writeFileSync(join(dir, "in.kv"), "prompt=hi\nbroken line\n");
    const result = await runCli(
      ["run", "-f", "in.kv", "-p", "echo", "-m", "m", "-c", "prompt", "--sync", "-o", "out.kv"],
      { cwd: dir, env: { LOOM_HOME: join(dir, "home"), LOOM_PLUGINS: "./kv.mjs" } },
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^loom: format kv \(\.\/kv\.mjs\) failed: no = in broken line/m);
    assert.doesNotMatch(result.stderr, /unexpected error|\n\s+at /);
  });
});
