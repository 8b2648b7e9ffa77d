import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BUILTIN_PLUGINS } from "../../plugins/_builtins.ts";
import { LoomPluginError, LoomUsageError } from "../base/errors.ts";
import { Registry } from "./registry.ts";
import { repoRoot } from "../test-support/paths.ts";
import { tempDir } from "../test-support/temp.ts";

const context = { env: {}, home: "/nonexistent" };
const FOLDERS = { provider: "providers", format: "formats", storage: "storage" } as const;

describe("built-in plugins", () => {
  it("the lazy map lists exactly the plugin folders, and each defines its name and kind", async () => {
    for (const [kind, folder] of Object.entries(FOLDERS) as Array<[keyof typeof FOLDERS, string]>) {
      const dirs = readdirSync(join(repoRoot(), "plugins", folder), { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.startsWith("_"))
        .map((d) => d.name)
        .sort();
      assert.deepEqual(Object.keys(BUILTIN_PLUGINS[kind]).sort(), dirs, kind);
      const registry = new Registry();
      for (const name of dirs) {
        const definition = await registry.definition(kind, name);
        assert.equal(definition.kind, kind);
        assert.equal(definition.name, name);
      }
    }
  });

  it("names the known plugins when asked for an unknown one", async () => {
    await assert.rejects(() => new Registry().definition("provider", "opanai"), (e: unknown) => {
      assert.ok(e instanceof LoomUsageError);
      assert.match(e.message, /unknown provider "opanai" \(known: .*echo/);
      return true;
    });
  });

  it("finds formats by extension, looking through .gz", async () => {
    const registry = new Registry();
    assert.equal((await registry.formatForPath("/x/data.csv.gz", context)).name, "csv");
    assert.equal((await registry.formatForPath("/x/DATA.JSONL", context)).name, "jsonl");
    await assert.rejects(
      () => registry.formatForPath("/x/data.parquet", context),
      /dataset\.format/,
    );
  });
});

describe("third-party plugins", () => {
  it("loads a module by path (relative to the job) that adds two kinds", async () => {
    const registry = new Registry();
    const definitions = await registry.load("./plugins/acme.ts", join(repoRoot(), "jobs"));
    assert.deepEqual(definitions.map((d) => `${d.kind}:${d.name}`), [
      "provider:acme",
      "format:tsv",
    ]);
    const provider = await registry.create("provider", "acme", {}, context);
    const answer = await provider.generate({
      model: "x",
      messages: [{ role: "user", content: "hi" }],
      params: {},
    });
    assert.equal(answer.text, "ACME: HI");
    assert.equal((await registry.formatForPath("/x/a.tsv", context)).name, "tsv");
    assert.ok(registry.names("provider").includes("acme"));
  });

  it("loads an installed package by name from node_modules above the job file", async () => {
    const root = tempDir();
    const pkg = join(root, "node_modules", "loom-plugin-upper");
    mkdirSync(join(pkg, "lib"), { recursive: true });
    writeFileSync(
      join(pkg, "package.json"),
      JSON.stringify({
        name: "loom-plugin-upper",
        type: "module",
        exports: { ".": { import: "./lib/index.js" } },
      }),
    );
    writeFileSync(
      join(pkg, "lib", "index.js"),
      `export default { apiVersion: 1, kind: "provider", name: "upper", create: () => ({
        specificationVersion: "loom.provider.v1", name: "upper", capabilities: { sync: true, batch: false, tokens: false },
        generate: async (r) => ({ text: r.messages[0].content.toUpperCase() }) }) };\n`,
    );
    const jobDir = join(root, "project", "jobs");
    mkdirSync(jobDir, { recursive: true });
    const registry = new Registry();
    await registry.load("loom-plugin-upper", jobDir);
    const provider = await registry.create("provider", "upper", {}, context);
    assert.equal(
      (await provider.generate({
        model: "x",
        messages: [{ role: "user", content: "ok" }],
        params: {},
      })).text,
      "OK",
    );
  });

  it("refuses modules that break the contract, saying what is wrong", async () => {
    const dir = tempDir();
    const cases: Array<[string, string, RegExp]> = [
      [
        "v2.js",
        `export default { apiVersion: 2, kind: "provider", name: "x", create() {} };`,
        /apiVersion is 2/,
      ],
      [
        "kind.js",
        `export default { apiVersion: 1, kind: "model", name: "x", create() {} };`,
        /kind must be one of/,
      ],
      [
        "name.js",
        `export default { apiVersion: 1, kind: "provider", name: "Bad Name", create() {} };`,
        /lower-case/,
      ],
      [
        "builtin.js",
        `export default { apiVersion: 1, kind: "provider", name: "echo", create() {} };`,
        /built-in provider/,
      ],
      ["nodefault.js", `export const x = 1;`, /no default export/],
      ["syntax.js", `export default {`, /cannot load it/],
    ];
    for (const [file, source, message] of cases) {
      writeFileSync(join(dir, file), source);
      await assert.rejects(() => new Registry().load(`./${file}`, dir), (e: unknown) => {
        assert.ok(e instanceof LoomPluginError, file);
        assert.match(e.message, message, file);
        assert.match(e.message, new RegExp(file.replace(".", "\\.")), file);
        return true;
      });
    }
    await assert.rejects(() => new Registry().load("./missing.js", dir), /no such file/);
    await assert.rejects(
      () => new Registry().load("loom-plugin-not-installed", dir),
      /cannot load it/,
    );
  });

  it("checks the instance a plugin creates", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "p.js"),
      `export default { apiVersion: 1, kind: "provider", name: "hollow", create: () => ({}) };`,
    );
    const registry = new Registry();
    await registry.load("./p.js", dir);
    await assert.rejects(
      () => registry.create("provider", "hollow", {}, context),
      /specificationVersion/,
    );
  });

  it("checks that an instance has its contract's required members, naming the plugin", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "p.js"),
      `const format = (name, extra) => ({ apiVersion: 1, kind: "format", name,
        create: () => ({ specificationVersion: "loom.format.v1", name, open() {}, write() {}, ...extra }) });
      export default [
        { apiVersion: 1, kind: "provider", name: "mute",
          create: () => ({ specificationVersion: "loom.provider.v1", name: "mute" }) },
        format("noext", { extensions: undefined }),
        format("nowrite", { extensions: [".nw"], write: undefined }),
      ];`,
    );
    const registry = new Registry();
    await registry.load("./p.js", dir);
    await assert.rejects(
      () => registry.create("provider", "mute", {}, context),
      /^LoomPluginError: provider mute \(\.\/p\.js\): create\(\) returned no generate\(\) function$/,
    );
    await assert.rejects(
      () => registry.create("format", "noext", {}, context),
      /format noext \(\.\/p\.js\): create\(\) returned no extensions list/,
    );
    await assert.rejects(
      () => registry.create("format", "nowrite", {}, context),
      /format nowrite \(\.\/p\.js\): create\(\) returned no write\(\) function/,
    );
  });

  it("a format's extension claimed twice is the user's choice; a broken format matters only alone", async () => {
    const dir = tempDir();
    const format = (name: string, extensions: string[], create = "") =>
      `{ apiVersion: 1, kind: "format", name: "${name}", create: () => { ${create}
        return { specificationVersion: "loom.format.v1", name: "${name}",
          extensions: ${JSON.stringify(extensions)}, open() {}, write() {} }; } }`;
    writeFileSync(
      join(dir, "p.js"),
      `export default [${format("acsv", [".csv"])}, ${
        format("broken", [".brk"], 'throw new Error("no config");')
      }];`,
    );
    const registry = new Registry();
    await registry.load("./p.js", dir);
    await assert.rejects(() => registry.formatForPath("data/in.csv.gz", context), (e: unknown) => {
      assert.ok(e instanceof LoomUsageError, String(e));
      assert.match(
        e.message,
        /^data\/in\.csv\.gz: the extension "\.csv" is claimed by the formats acsv and csv; set dataset\.format/,
      );
      return true;
    });
    // The broken plugin does not stand in the way of a JSON file...
    assert.equal((await registry.formatForPath("in.jsonl", context)).name, "jsonl");
    // ...and is what is said when nothing else could read the file.
    await assert.rejects(
      () => registry.formatForPath("in.brk", context),
      /^LoomPluginError: format broken \(\.\/p\.js\): create\(\) failed: no config$/,
    );
  });

  it("a system fault from create() (a code such as EACCES) is told as Loom tells one, not as a bug", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "p.js"),
      `export default { apiVersion: 1, kind: "format", name: "locked", create: () => {
        throw Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: "EACCES" });
      } };`,
    );
    const registry = new Registry();
    await registry.load("./p.js", dir);
    await assert.rejects(() => registry.create("format", "locked", {}, context), (e: unknown) => {
      assert.ok(!(e instanceof LoomPluginError), String(e));
      assert.equal((e as { code?: string }).code, "EACCES");
      return true;
    });
  });
});
