/**
 * Path plugins load as ES modules in any project type, and a package that ships only TypeScript
 * is refused with what to do.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { LoomPluginError } from "../base/errors.ts";
import { tempDir } from "../test-support/temp.ts";
import { importPluginModule } from "./loader.ts";

/** Writes files (path → text) under a new folder and returns it. */
function project(files: Record<string, string>): string {
  const dir = tempDir("loom-loader-");
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** A plugin module with types, importing a sibling TypeScript file. */
const TS_PLUGIN = `import { kind } from "./lib/kind.ts";
import type { Unused } from "./lib/kind.ts";
const name: string = "acme";
export default { apiVersion: 1, kind, name, create: () => ({}) };
`;
const KIND = `export const kind: "format" = "format";\nexport type Unused = number;\n`;
const JS_PLUGIN =
  `export default { apiVersion: 1, kind: "format", name: "acme-js", create: () => ({}) };\n`;

for (const type of ["commonjs", "module", undefined]) {
  describe(`path plugins in a project of type ${type ?? "(none)"}`, () => {
    const dir = project({
      "package.json": JSON.stringify({ name: "app", ...(type ? { type } : {}) }),
      "plugins/acme.ts": TS_PLUGIN,
      "plugins/acme.mts": TS_PLUGIN,
      "plugins/lib/kind.ts": KIND,
      "plugins/acme.js": JS_PLUGIN,
      "plugins/old.cjs": `module.exports = { name: "old" };\n`,
      "plugins/old.js": `module.exports = { name: "old-js" };\n`,
    });

    for (const file of ["acme.ts", "acme.mts"]) {
      it(`loads a TypeScript ES module (${file}) and the files it imports`, async () => {
        const plugin = await importPluginModule(`./plugins/${file}`, dir);
        assert.deepEqual({ ...(plugin as object), create: undefined }, {
          apiVersion: 1,
          kind: "format",
          name: "acme",
          create: undefined,
        });
      });
    }

    it("loads a JavaScript ES module (.js)", async () => {
      const plugin = await importPluginModule("./plugins/acme.js", dir);
      assert.equal((plugin as { name: string }).name, "acme-js");
    });

    it("still loads a CommonJS plugin (.cjs, and .js beside an ES module one)", async () => {
      const plugin = await importPluginModule("./plugins/old.cjs", dir);
      assert.equal((plugin as { name: string }).name, "old");
      // A .js file is CommonJS only under "type": "commonjs" (Deno never guesses).
      if (type !== "commonjs") return;
      const js = await importPluginModule("./plugins/old.js", dir);
      assert.equal((js as { name: string }).name, "old-js");
    });
  });
}

describe("plugin packages", () => {
  it("loads a package that ships JavaScript", async () => {
    const dir = project({
      "node_modules/loom-plugin-js/package.json": JSON.stringify({
        name: "loom-plugin-js",
        type: "module",
        exports: { ".": { import: "./dist/mod.js" } },
      }),
      "node_modules/loom-plugin-js/dist/mod.js": JS_PLUGIN,
    });
    const plugin = await importPluginModule("loom-plugin-js", dir);
    assert.equal((plugin as { name: string }).name, "acme-js");
  });

  it("refuses a package that ships only TypeScript, telling the author to publish JavaScript", async (t) => {
    const dir = project({
      "node_modules/loom-plugin-ts/package.json": JSON.stringify({
        name: "loom-plugin-ts",
        type: "module",
        main: "mod.ts",
      }),
      "node_modules/loom-plugin-ts/mod.ts": TS_PLUGIN,
      "node_modules/loom-plugin-ts/lib/kind.ts": KIND,
    });
    let plugin: unknown;
    try {
      plugin = await importPluginModule("loom-plugin-ts", dir);
    } catch (error) {
      assert.ok(error instanceof LoomPluginError, String(error));
      assert.match(error.message, /^plugin loom-plugin-ts: cannot load it: /);
      assert.match(error.message, /the plugin's package must ship JavaScript/);
      return;
    }
    // Deno run outside a project (no deno.json) strips types under node_modules too.
    assert.notEqual(process.versions.deno, undefined, "only Deno may load it");
    assert.equal((plugin as { name: string }).name, "acme");
    t.diagnostic("this runtime loads TypeScript from node_modules");
  });
});

describe("a plugin whose import fails", () => {
  it("is refused in one line, without the runtime's colours or hints", async () => {
    // A package that is not installed. (Not loom-batch: under `deno test` here, deno.json maps
    // that name to the sources for every module.)
    const dir = project({
      "reverse.ts": `import { definePlugin } from "loom-no-such-package/plugin";\n` +
        `export default definePlugin({ apiVersion: 1, kind: "format", name: "rev" });\n`,
    });
    await assert.rejects(importPluginModule("./reverse.ts", dir), (error: Error) => {
      assert.ok(error instanceof LoomPluginError, String(error));
      assert.match(
        error.message,
        /^plugin \.\/reverse\.ts: cannot load it: .*loom-no-such-package/,
      );
      assert.doesNotMatch(error.message, /\n/, "one line");
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(error.message, /\x1b\[/, "no terminal colours");
      assert.doesNotMatch(error.message, /deno add/, "not the runtime's advice");
      return true;
    });
  });
});

describe("what an author gets wrong", () => {
  it("a package that is not installed: says to install it, not loom-batch", async () => {
    const dir = project({ "job.yaml": "" });
    await assert.rejects(importPluginModule("loom-plugin-nope", dir), (error: Error) => {
      assert.ok(error instanceof LoomPluginError, String(error));
      assert.match(error.message, /^plugin loom-plugin-nope: cannot load it: /);
      assert.match(error.message, /it is not installed: `npm i loom-plugin-nope`/);
      assert.doesNotMatch(error.message, /install loom-batch/);
      return true;
    });
  });

  it("ES module syntax compiled to CommonJS (exports.default) loads", async () => {
    const dir = project({
      "plugins/compiled.cjs": `"use strict";\n` +
        `Object.defineProperty(exports, "__esModule", { value: true });\n` +
        `exports.default = { apiVersion: 1, kind: "format", name: "compiled", create: () => ({}) };\n`,
    });
    const plugin = await importPluginModule("./plugins/compiled.cjs", dir);
    assert.equal((plugin as { name: string }).name, "compiled");
  });

  it("no default export: the message names what the module does export", async () => {
    const dir = project({
      "plugins/named.mjs":
        `export const psv = { apiVersion: 1, kind: "format", name: "psv", create: () => ({}) };\n`,
    });
    await assert.rejects(
      importPluginModule("./plugins/named.mjs", dir),
      /the module has no default export \(export default a plugin definition, or a list of them; it exports psv\)/,
    );
  });
});
