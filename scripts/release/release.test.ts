/**
 * The release tooling: actionlint rejects broken workflows and passes ours, the workflows have the
 * shape the README promises, and the version checks refuse a tag that cannot be released.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { runtimeName } from "../../core/base/runtime.ts";
import { formatProblem, lintWorkflow, lintWorkflowFiles, workflowFiles } from "./actionlint.ts";
import { releaseProblems, withVersion } from "./version.ts";

// This file is scripts/release/ in the source tree and dist/scripts/release/ in the build.
const root = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "../.." : "../../..", import.meta.url),
);
// The scripts run from source on Node (it strips types): the Node under test, or the pinned one.
const node = runtimeName() === "node"
  ? process.execPath
  : join(root, "node_modules", ".bin", "node");
const script = (name: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(node, [join(root, "scripts", name), ...args], { cwd: root, env, encoding: "utf8" });

const good = `name: ok
on:
  push:
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: npm test
`;

/** `good` with one line replaced, so each broken workflow has exactly one fault. */
const breaking = (line: string, by: string) => {
  assert.ok(good.includes(line), line);
  return good.replace(line, by);
};

describe("workflow lint (actionlint)", () => {
  it("passes a correct workflow", async () => {
    assert.deepEqual(await lintWorkflow(good, "ok.yml"), []);
  });

  it("rejects an unknown key, naming it and where it is", async () => {
    const problems = await lintWorkflow(
      breaking("    steps:\n", "    timeout: 5\n    steps:\n"),
      "k.yml",
    );
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0].kind, "syntax-check");
    assert.match(problems[0].message, /unexpected key "timeout" for "job" section/);
    assert.deepEqual([problems[0].line, problems[0].column], [7, 5]);
    assert.match(formatProblem(problems[0]), /^k\.yml:7:5: unexpected key "timeout"/);
  });

  it("rejects a bad `on:`", async () => {
    const unknown = await lintWorkflow(breaking("  push:\n", "  pushh:\n"), "on.yml");
    assert.equal(unknown.length, 1, JSON.stringify(unknown));
    assert.match(unknown[0].message, /unknown Webhook event "pushh"/);
    const scalar = await lintWorkflow(breaking("on:\n  push:\n", "on: 42\n"), "on.yml");
    assert.ok(scalar.length > 0, "a number as `on:` passed");
  });

  it("rejects a job without runs-on", async () => {
    const problems = await lintWorkflow(breaking("    runs-on: ubuntu-latest\n", ""), "r.yml");
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0].message, /"runs-on" section is missing in job "test"/);
  });

  it("rejects an input the action does not have and an undefined expression", async () => {
    const input = breaking(
      "      - uses: actions/checkout@v4\n",
      "      - uses: actions/checkout@v4\n        with:\n          fetch-depthh: 1\n",
    );
    assert.match((await lintWorkflow(input, "i.yml"))[0]?.message ?? "", /"fetch-depthh" is not/);
    const expr = breaking("npm test", "echo ${{ matrix.nope }}");
    assert.equal((await lintWorkflow(expr, "e.yml"))[0]?.kind, "expression");
  });

  it("passes the repository's workflows", async () => {
    const files = workflowFiles(root);
    assert.deepEqual(files.map((f) => f.slice(root.length)), [
      ".github/workflows/publish.yml",
      ".github/workflows/test.yml",
    ]);
    assert.deepEqual(await lintWorkflowFiles(files, root), []);
  });

  it("npm run lint:workflows fails on a broken file and passes on ours", () => {
    const dir = mkdtempSync(join(tmpdir(), "loom-workflows-"));
    try {
      const bad = join(dir, "bad.yml");
      writeFileSync(bad, breaking("    runs-on: ubuntu-latest\n", ""));
      const failed = script("lint-workflows.ts", [bad]);
      assert.equal(failed.status, 1, failed.stderr);
      assert.match(failed.stderr, /bad\.yml:5:3: "runs-on" section is missing/);
      const passed = script("lint-workflows.ts", []);
      assert.equal(passed.status, 0, passed.stderr);
      assert.match(passed.stdout, /2 file\(s\), 0 problem\(s\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the workflows", () => {
  const load = (name: string) =>
    parse(readFileSync(join(root, ".github", "workflows", name), "utf8"));

  it("test.yml runs on push and pull requests, on Node 22 and 24 and on Deno", () => {
    const flow = load("test.yml");
    assert.ok("push" in flow.on && "pull_request" in flow.on && "workflow_call" in flow.on);
    assert.deepEqual(flow.jobs.node.strategy.matrix.node, ["22", "24"]);
    const nodeRun = flow.jobs.node.steps.map((s: { run?: string }) => s.run ?? "").join("\n");
    assert.match(nodeRun, /LOOM_TEST_NODE="\$\(command -v node\)"/);
    assert.match(nodeRun, /npm run test:node/);
    const denoRun = flow.jobs.deno.steps.map((s: { run?: string }) => s.run ?? "").join("\n");
    assert.match(denoRun, /npm run test:deno/);
  });

  it("publish.yml publishes v* tags after the tests, through OIDC and without a token", () => {
    const text = readFileSync(join(root, ".github", "workflows", "publish.yml"), "utf8");
    const flow = parse(text);
    assert.deepEqual(flow.on, { push: { tags: ["v*"] } });
    assert.equal(flow.jobs.test.uses, "./.github/workflows/test.yml");
    assert.equal(flow.jobs.publish.needs, "test");
    assert.deepEqual(flow.jobs.publish.permissions, { contents: "read", "id-token": "write" });
    const runs = flow.jobs.publish.steps.map((s: { run?: string }) => s.run ?? "");
    assert.ok(runs.includes("npm publish --provenance --access public"));
    assert.doesNotMatch(text, /secrets\.|NPM_TOKEN|NODE_AUTH_TOKEN:/);
  });
});

describe("release versions", () => {
  const pkg = { version: "1.2.3", repository: { url: "git+https://github.com/acme/loom.git" } };

  it("accepts the tag of package.json's version when deno.json and the repository agree", () => {
    assert.deepEqual(releaseProblems("v1.2.3", pkg, { version: "1.2.3" }, "acme/loom"), []);
    assert.deepEqual(releaseProblems("v1.2.3", { version: "1.2.3" }, undefined), []);
  });

  it("refuses another tag, another deno.json version and another repository, saying what to do", () => {
    const [tag] = releaseProblems("v1.2.4", pkg, undefined);
    assert.match(
      tag,
      /tag v1\.2\.4 does not match package\.json's version 1\.2\.3: push the tag v1\.2\.3/,
    );
    const [deno] = releaseProblems("v1.2.3", pkg, { version: "1.2.0" });
    assert.match(deno, /deno\.json's version 1\.2\.0 .*scripts\/release-version\.ts sync/);
    const [repo] = releaseProblems("v1.2.3", pkg, undefined, "other/loom");
    assert.match(repo, /is not github\.com\/other\/loom/);
    const [none] = releaseProblems("v1.2.3", { version: "1.2.3" }, undefined, "acme/loom");
    assert.match(none, /repository \(none\)/);
  });

  it("sets deno.json's version and keeps the rest", () => {
    const text = withVersion(
      `{\n  "name": "@loom/loom",\n  "version": "0.1.0",\n  "x": [1]\n}\n`,
      "0.2.0",
    );
    assert.equal(
      text,
      `{\n  "name": "@loom/loom",\n  "version": "0.2.0",\n  "x": [\n    1\n  ]\n}\n`,
    );
  });

  it("the check command passes this repository's version and refuses another", () => {
    const { GITHUB_REPOSITORY: _, ...env } = process.env;
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    const version = manifest.version;
    const ok = script("release-version.ts", ["check", `v${version}`], env);
    assert.equal(ok.status, 0, ok.stderr);
    // Without a repository in package.json the workflow would refuse it: said before tagging.
    if (manifest.repository) assert.equal(ok.stderr, "");
    else assert.match(ok.stderr, /warning: package\.json names no repository/);
    const asWorkflow = script("release-version.ts", ["check", `v${version}`], {
      ...env,
      GITHUB_REPOSITORY: "acme/not-this-one",
    });
    assert.equal(asWorkflow.status, 1);
    assert.match(asWorkflow.stderr, /is not github\.com\/acme\/not-this-one/);
    const bad = script("release-version.ts", ["check", "v0.0.0-nope"], env);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /tag v0\.0\.0-nope does not match package\.json's version/);
  });
});
