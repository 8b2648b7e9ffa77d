/**
 * `core/` is built in layers: each folder may import only from its own layer and the ones below
 * it, so the direction of every dependency is visible from the tree. Tests and test support are
 * exempt (a test may drive a lower layer through a higher one).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { repoRoot } from "./test-support/paths.ts";

/** Bottom to top. `spec` holds the plugin contracts, `base` what every layer needs. */
export const LAYERS = [
  "base",
  "spec",
  "plugins",
  "job",
  "data",
  "state",
  "run",
  "batch",
  "commands",
  "testing",
  "plugin.ts",
  "mod.ts",
] as const;

// The sources, also when this test runs from the build (whose .d.ts files import .js).
const core = join(repoRoot(), "core");
const emulator = join(repoRoot(), "emulator");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "test-support" ? [] : sources(path);
    return /\.ts$/.test(entry.name) && !/\.test\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** The layer of a file under core/ (its first folder, or the file's own name at the top). */
function layerOf(path: string): string {
  return relative(core, path).split(/[\\/]/)[0];
}

test("every core module imports only from its own layer or the ones below", () => {
  const rank = (layer: string) => LAYERS.indexOf(layer as (typeof LAYERS)[number]);
  const wrong: string[] = [];
  const files = sources(core);
  for (const file of files) {
    const own = layerOf(file);
    assert.notEqual(rank(own), -1, `${relative(core, file)} is in no layer (add it to LAYERS)`);
    const text = readFileSync(file, "utf8");
    for (const [, spec] of text.matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g)) {
      const target = resolve(dirname(file), spec);
      // The emulator is a test aid: only the conformance suites (`loom-batch/testing`) use it.
      if (target.startsWith(emulator + "/") && own !== "testing") {
        wrong.push(`${relative(core, file)} (${own}) imports the emulator (${spec})`);
      }
      if (!target.startsWith(core + "/")) continue; // plugins/, cli/: checked elsewhere
      const theirs = layerOf(target);
      if (rank(theirs) > rank(own)) {
        wrong.push(`${relative(core, file)} (${own}) imports ${spec} (${theirs})`);
      }
    }
  }
  assert.ok(files.length > 40, `only ${files.length} core modules found`);
  assert.deepEqual(wrong, [], "imports that go up a layer");
});
