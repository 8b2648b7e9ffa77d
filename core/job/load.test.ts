import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LoomJobError, LoomUsageError } from "../base/errors.ts";
import { type JobOverride, loadJob } from "./load.ts";

const EXAMPLE = `# yaml-language-server: $schema=./loom.schema.json
dataset: { path: data/articles.csv, id: id }
prompt:
  column: text
  system: You are a concise editor.
provider: openai
model: gpt-4o-mini
mode: batch
params: { temperature: 0, max_tokens: 200 }
output: { path: out/summaries.csv, with_meta: true }
sync: { workers: 8, cache: true }
plugins: [./plugins/acme.ts, loom-provider-acme, "@acme/loom-x", ../shared/x.ts]
`;

let root = "";
let jobs = "";
let elsewhere = "";

/** Writes a job file under `<root>/jobs/` and returns its absolute path. */
async function job(name: string, text: string): Promise<string> {
  const file = join(jobs, name);
  await writeFile(file, text);
  return file;
}

/** The LoomJobError `run` throws. */
async function jobError(run: () => Promise<unknown>): Promise<LoomJobError> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof LoomJobError, `expected a LoomJobError, got ${error}`);
    return error;
  }
  assert.fail("expected a LoomJobError");
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "loom-job-"));
  jobs = join(root, "jobs");
  elsewhere = join(root, "elsewhere");
  await mkdir(jobs);
  await mkdir(elsewhere);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("loadJob with a job file", () => {
  it("validates a full job and resolves its paths against the job file's directory", async () => {
    const file = await job("example.yaml", EXAMPLE);
    const loaded = await loadJob({ file, cwd: elsewhere });
    assert.equal(loaded.file, file);
    assert.equal(loaded.dir, jobs);
    assert.deepEqual(loaded.spec, {
      dataset: { path: join(jobs, "data/articles.csv"), id: "id" },
      prompt: { column: "text", system: "You are a concise editor." },
      provider: "openai",
      model: "gpt-4o-mini",
      mode: "batch",
      params: { temperature: 0, max_tokens: 200 },
      output: { path: join(jobs, "out/summaries.csv"), with_meta: true },
      sync: { workers: 8, cache: true },
      plugins: [
        join(jobs, "plugins/acme.ts"),
        "loom-provider-acme",
        "@acme/loom-x",
        join(root, "shared/x.ts"),
      ],
    });
    // The file is outside cwd, so it is shown absolute.
    assert.equal(loaded.where(["model"]), `${file}:7:8`);
    assert.equal(loaded.where(["dataset", "path"]), `${file}:2:18`);
    assert.equal(loaded.where(["plugins", "1"]), `${file}:12:30`);
    assert.equal(loaded.where(["prompt", "template"]), "job");
  });

  it("shows the job file relative to cwd when it is inside it", async () => {
    const loaded = await loadJob({ file: "jobs/example.yaml", cwd: root });
    assert.equal(loaded.file, join(jobs, "example.yaml"));
    assert.equal(loaded.where(["sync", "workers"]), "jobs/example.yaml:11:18");
  });

  it("lets flags override fields; their paths are relative to cwd", async () => {
    const file = await job("example.yaml", EXAMPLE);
    const overrides: JobOverride[] = [
      { path: ["dataset", "path"], value: "in.csv", flag: "--file" },
      { path: ["output", "path"], value: "../res.csv", flag: "--output" },
      { path: ["sync", "workers"], value: 16, flag: "--workers" },
      { path: ["model"], value: "gpt-4o", flag: "--model" },
      { path: ["provider"], value: undefined, flag: "--provider" }, // not given: ignored
    ];
    const loaded = await loadJob({ file, cwd: elsewhere, overrides });
    assert.equal(loaded.spec.dataset.path, join(elsewhere, "in.csv"));
    assert.equal(loaded.spec.dataset.id, "id");
    assert.equal(loaded.spec.output?.path, join(root, "res.csv"));
    assert.equal(loaded.spec.output?.with_meta, true);
    assert.deepEqual(loaded.spec.sync, { workers: 16, cache: true });
    assert.equal(loaded.spec.model, "gpt-4o");
    assert.equal(loaded.spec.provider, "openai");
    assert.equal(loaded.where(["sync", "workers"]), "--workers");
    assert.equal(loaded.where(["output", "path"]), "--output");
    assert.equal(loaded.where(["provider"]), `${file}:6:11`);
  });

  it("reports a flag's bad value at the flag", async () => {
    const file = await job("example.yaml", EXAMPLE);
    const overrides = [{ path: ["sync", "workers"], value: "lots", flag: "--workers" }];
    const error = await jobError(() => loadJob({ file, cwd: elsewhere, overrides }));
    assert.deepEqual(error.issues, [
      {
        where: "--workers",
        path: "sync.workers",
        message: 'expected a whole number from 1 to 4096, got "lots"',
      },
    ]);
  });

  it("follows YAML anchors, aliases and merges", async () => {
    const file = await job(
      "merge.yaml",
      "dataset: &d { path: a.csv }\nprovider: echo\nmodel: m\nsync:\n  <<: { workers: 3, cache: false }\n  cache: true\n",
    );
    const loaded = await loadJob({ file, cwd: root });
    assert.deepEqual(loaded.spec.sync, { workers: 3, cache: true });
    assert.equal(loaded.where(["sync", "workers"]), "jobs/merge.yaml:5:18");
    assert.equal(loaded.where(["sync", "cache"]), "jobs/merge.yaml:6:10");
  });
});

describe("loadJob without a job file", () => {
  it("builds the job from flags alone, relative to cwd", async () => {
    const overrides: JobOverride[] = [
      { path: ["dataset", "path"], value: "a.csv", flag: "--file" },
      { path: ["provider"], value: "echo", flag: "--provider" },
      { path: ["model"], value: "m", flag: "--model" },
      { path: ["prompt", "column"], value: "text", flag: "--col" },
      { path: ["mode"], value: "sync", flag: "--sync" },
    ];
    const loaded = await loadJob({ cwd: elsewhere, overrides });
    assert.equal(loaded.file, undefined);
    assert.equal(loaded.dir, elsewhere);
    assert.deepEqual(loaded.spec, {
      dataset: { path: join(elsewhere, "a.csv") },
      provider: "echo",
      model: "m",
      prompt: { column: "text" },
      mode: "sync",
    });
    assert.equal(loaded.where(["prompt", "column"]), "--col");
    assert.equal(loaded.where(["sync", "workers"]), "job");
  });

  it("names the flag that would supply a missing field", async () => {
    const overrides = [
      { path: ["dataset", "path"], value: "a.csv", flag: "--file" },
      { path: ["provider"], value: "echo", flag: "--provider" },
      { path: ["sync", "workers"], value: 0, flag: "--workers" },
    ];
    const error = await jobError(() => loadJob({ cwd: elsewhere, overrides }));
    assert.deepEqual(error.issues, [
      { where: "--model", path: "model", message: "required (pass --model or use a job file)" },
      {
        where: "--workers",
        path: "sync.workers",
        message: "expected a whole number from 1 to 4096, got 0",
      },
    ]);
    assert.match(error.message, /^invalid job \(2 problems\):\n {2}--model: model: required/);
  });

  it("asks for --file when there is no dataset at all", async () => {
    const error = await jobError(() => loadJob({ cwd: elsewhere }));
    assert.deepEqual(error.issues.map((i) => i.where), ["--file", "--provider", "--model"]);
  });
});

describe("loadJob problems", () => {
  it("reports every problem of a bad file at once, at its line and column", async () => {
    const file = await job(
      "bad.yaml",
      [
        "dataset:",
        "  id: key",
        "prompt:",
        "  column: text",
        '  template: "Summarise {{text}}"',
        "provider: openai",
        "modle: gpt-4o-mini",
        "sync:",
        "  workers: 0",
        '  cache: "yes"',
        "params: { temperature: abc, top_p: 1.5 }",
        "output: { pth: out.csv }",
        "workers: 4",
        "",
      ].join("\n"),
    );
    const error = await jobError(() => loadJob({ file, cwd: root }));
    assert.deepEqual(error.issues, [
      { where: "jobs/bad.yaml:1:1", path: "model", message: 'missing required key "model"' },
      { where: "jobs/bad.yaml:2:3", path: "dataset.path", message: 'missing required key "path"' },
      {
        where: "jobs/bad.yaml:4:3",
        path: "prompt",
        message: "give either prompt.column or prompt.template, not both",
      },
      {
        where: "jobs/bad.yaml:7:1",
        path: "modle",
        message: 'unknown key "modle" (did you mean "model"?)',
      },
      {
        where: "jobs/bad.yaml:9:12",
        path: "sync.workers",
        message: "expected a whole number from 1 to 4096, got 0",
      },
      {
        where: "jobs/bad.yaml:10:10",
        path: "sync.cache",
        message: 'expected true or false, got "yes"',
      },
      {
        where: "jobs/bad.yaml:11:24",
        path: "params.temperature",
        message: 'expected a number from 0 to 2, got "abc"',
      },
      {
        where: "jobs/bad.yaml:11:36",
        path: "params.top_p",
        message: "expected a number from 0 to 1, got 1.5",
      },
      {
        where: "jobs/bad.yaml:12:11",
        path: "output.pth",
        message: 'unknown key "pth" (did you mean "path"?)',
      },
      {
        where: "jobs/bad.yaml:13:1",
        path: "workers",
        message: 'unknown key "workers" (did you mean "sync.workers"?)',
      },
    ]);
    assert.match(error.message, /^invalid job file jobs\/bad\.yaml \(10 problems\):\n/);
    assert.match(
      error.message,
      /\n {2}jobs\/bad\.yaml:7:1: modle: unknown key "modle" \(did you mean "model"\?\)\n/,
    );
    assert.equal(error.exitCode, 2);
  });

  it("reports wrong types and empty values", async () => {
    const file = await job(
      "types.yaml",
      "dataset: data.csv\nprovider: 42\nmodel:\nplugins: [a, '', [b]]\nparams: { stop: [1] }\nmode: fast\n",
    );
    const error = await jobError(() => loadJob({ file, cwd: root }));
    assert.deepEqual(error.issues, [
      {
        where: "jobs/types.yaml:1:10",
        path: "dataset",
        message: 'expected a mapping, got "data.csv"',
      },
      {
        where: "jobs/types.yaml:2:11",
        path: "provider",
        message: "expected a string, got 42 (put it in quotes)",
      },
      {
        where: "jobs/types.yaml:3:1",
        path: "model",
        message: "expected a string, got an empty value",
      },
      { where: "jobs/types.yaml:4:14", path: "plugins[1]", message: "must not be empty" },
      {
        where: "jobs/types.yaml:4:18",
        path: "plugins[2]",
        message: 'expected a string, got ["b"]',
      },
      {
        where: "jobs/types.yaml:5:17",
        path: "params.stop",
        message: "expected a string or a list of strings, got [1]",
      },
      {
        where: "jobs/types.yaml:6:7",
        path: "mode",
        message: 'expected one of "batch", "sync", got "fast"',
      },
    ]);
  });

  it("reports YAML syntax errors with their positions, all at once", async () => {
    const file = await job("syntax.yaml", "dataset:\n  path: a.csv\n provider: x\nmodel: [a, b\n");
    const error = await jobError(() => loadJob({ file, cwd: root }));
    assert.deepEqual(error.issues.map((i) => i.where), [
      "jobs/syntax.yaml:3:1",
      "jobs/syntax.yaml:5:1",
    ]);
    assert.match(error.issues[0].message, /same column/);
    assert.match(error.issues[1].message, /end with a \]/);
    assert.match(error.message, /^invalid YAML in job file jobs\/syntax\.yaml \(2 problems\)/);
  });

  it("treats duplicate keys as errors, at the second key", async () => {
    const file = await job(
      "dup.yaml",
      "dataset: { path: a.csv, path: b.csv }\nprovider: echo\nmodel: m\nprovider: openai\n",
    );
    const error = await jobError(() => loadJob({ file, cwd: root }));
    assert.deepEqual(error.issues, [
      {
        where: "jobs/dup.yaml:1:25",
        path: "dataset.path",
        message: 'duplicate key "path" (first at line 1)',
      },
      {
        where: "jobs/dup.yaml:4:1",
        path: "provider",
        message: 'duplicate key "provider" (first at line 2)',
      },
    ]);
  });

  it("reports an alias to an unknown anchor", async () => {
    const file = await job("alias.yaml", "dataset: *nowhere\nprovider: echo\nmodel: m\n");
    const error = await jobError(() => loadJob({ file, cwd: root }));
    assert.deepEqual(error.issues, [{
      where: "jobs/alias.yaml:1:10",
      path: "dataset",
      message: 'unknown alias "*nowhere"',
    }]);
  });

  it("rejects an empty file and a top level that is not a mapping", async () => {
    const empty = await job("empty.yaml", "# nothing yet\n");
    const error = await jobError(() => loadJob({ file: empty, cwd: root }));
    assert.equal(error.issues.length, 1);
    assert.equal(error.issues[0].where, "jobs/empty.yaml:1:1");
    assert.match(error.issues[0].message, /job file is empty/);

    const list = await job("list.yaml", "# a list\n- dataset: a.csv\n");
    const listError = await jobError(() => loadJob({ file: list, cwd: root }));
    assert.equal(listError.issues[0].where, "jobs/list.yaml:2:1");
    assert.match(
      listError.issues[0].message,
      /must be a mapping \(dataset:, provider:, model:, \.\.\.\), got a list/,
    );
  });

  it("says which job file does not exist", async () => {
    await assert.rejects(loadJob({ file: "jobs/nope.yaml", cwd: root }), (error: unknown) => {
      assert.ok(error instanceof LoomUsageError);
      assert.ok(!(error instanceof LoomJobError));
      assert.equal(error.message, `job file not found: ${join(jobs, "nope.yaml")}`);
      return true;
    });
  });
});
