/**
 * A third-party storage plugin (`fixtures/acme-store.mjs`, plain JavaScript as an author ships
 * it): it passes the conformance suite every backend passes, and Loom uses it when `LOOM_STATE`
 * names it, for the cache of a sync run and for a batch job's record.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "../plugins/registry.ts";
import type { StorageV2 } from "../spec/storage.ts";
import { runCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import { repoRoot } from "../test-support/paths.ts";
import { storageConformance } from "../testing/storage-conformance.ts";

// From the source tree under both runtimes: the build copies no .mjs fixture into dist/.
const PLUGIN = join(repoRoot(), "core", "state", "fixtures", "acme-store.mjs");

async function acme(file: string): Promise<StorageV2> {
  const registry = new Registry();
  await registry.load(PLUGIN, "/");
  return registry.create("storage", "acme", { url: `acme:${file}` }, { env: {}, home: "/" });
}

storageConformance({
  name: "acme (third-party)",
  create: () => acme(join(tempDir("loom-acme-"), "state.json")),
  reopen: (first) => acme(first.location.slice("acme:".length)),
});

describe("a third-party store chosen by name", () => {
  it("keeps a sync run's cache and a batch job's record when LOOM_STATE names it", async () => {
    const dir = tempDir("loom-acme-cli-");
    const file = join(dir, "state.json");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,a\n2,b\n");
    const env = { LOOM_HOME: join(dir, "home"), LOOM_PLUGINS: PLUGIN, LOOM_STATE: `acme:${file}` };
    const sync = ["run", "-f", "d.csv", "-p", "echo", "-m", "m", "--sync", "-o", "o.csv"];
    const first = await runCli(sync, { cwd: dir, env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(Object.keys(JSON.parse(readFileSync(file, "utf8")).cache).length, 2);
    const again = await runCli([...sync, "--force"], { cwd: dir, env });
    assert.match(again.stdout, /0 answered, 2 from cache/);

    const submit = await runCli(["run", "-f", "d.csv", "-p", "echo", "-m", "m", "-o", "b.csv"], {
      cwd: dir,
      env,
    });
    assert.equal(submit.code, 0, submit.stderr);
    const id = /submitted job (\S+):/.exec(submit.stdout)![1];
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(file, "utf8")).jobs), [id]);
    const list = await runCli(["list"], { cwd: dir, env });
    assert.match(list.stdout, new RegExp(id));
    const fetched = await runCli(["fetch"], { cwd: dir, env });
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(file, "utf8")).jobs), []);
  });

  it("refuses a name no plugin has, saying what LOOM_STATE may hold", async () => {
    const dir = tempDir("loom-acme-cli-");
    const res = await runCli(["list"], {
      cwd: dir,
      env: { LOOM_HOME: join(dir, "home"), LOOM_STATE: "nosuch:thing" },
    });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /^loom: LOOM_STATE "nosuch:thing" names no state store/);
  });
});
