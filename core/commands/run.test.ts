import assert from "node:assert/strict";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  LoomInterruptedError,
  LoomJobError,
  LoomProviderError,
  LoomUsageError,
} from "../base/errors.ts";
import { Registry } from "../plugins/registry.ts";
import type { GenerateResult } from "../spec/provider.ts";
import type { RunEvent } from "../base/events.ts";
import { type JobOverride, loadJob } from "../job/load.ts";
import { tempDir } from "../test-support/temp.ts";
import { runJob } from "./run.ts";
import { filesUnder } from "../test-support/files.ts";

/** Writes a job file and its data into a fresh directory; returns paths and a run helper. */
function setup(jobYaml: string, files: Record<string, string>) {
  const dir = tempDir();
  const home = join(dir, "home");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, "job.yaml"), jobYaml);
  const events: RunEvent[] = [];
  const run = async (overrides: JobOverride[] = [], options: Parameters<typeof runJob>[1] = {}) => {
    events.length = 0;
    const job = await loadJob({ file: join(dir, "job.yaml"), overrides, cwd: dir });
    return runJob(job, { env: { LOOM_HOME: home }, onEvent: (e) => events.push(e), ...options });
  };
  return { dir, home, run, events };
}

const CSV = 'id,text\r\n1,"first, with comma"\r\n2,second\r\n3,"third ""quoted"""\r\n4,fourth\r\n';

describe("sync runs", () => {
  it("answers every row in place, then serves a rerun from the cache", async () => {
    const t = setup(
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: m\nmode: sync\noutput: { path: out.csv }\n",
      { "in.csv": CSV },
    );
    const first = await t.run();
    assert.deepEqual([first.rows, first.ok, first.cached, first.errors], [4, 4, 0, 0]);
    const out = readFileSync(join(t.dir, "out.csv"), "utf8");
    assert.equal(
      out,
      'id,text,llm_response,llm_error\r\n1,"first, with comma","first, with comma",\r\n2,second,second,\r\n' +
        '3,"third ""quoted""","third ""quoted""",\r\n4,fourth,fourth,\r\n',
    );
    const second = await t.run([], { force: true });
    assert.deepEqual([second.ok, second.cached, second.errors], [0, 4, 0]);
    assert.equal(readFileSync(join(t.dir, "out.csv"), "utf8"), out);
    const noCache = await t.run([{ path: ["sync", "cache"], value: false, flag: "--no-cache" }], {
      force: true,
    });
    assert.deepEqual([noCache.ok, noCache.cached], [4, 0]);
  });

  it("keeps failed rows in place with llm_error, never caches them, and adds meta columns", async () => {
    const t = setup(
      "dataset: { path: in.jsonl }\nprovider: echo\nprovider_options: { fail_on: BAD }\nmodel: m1\nmode: sync\n" +
        "output: { path: out.jsonl, with_meta: true }\nsync: { workers: 3 }\n",
      {
        "in.jsonl":
          '{"id":1,"prompt":"ok one"}\n{"id":2,"prompt":"BAD two"}\n{"id":3,"prompt":""}\n{"id":4,"prompt":"ok four"}\n',
      },
    );
    const summary = await t.run();
    assert.deepEqual([summary.ok, summary.errors], [2, 2]);
    const rows = readFileSync(join(t.dir, "out.jsonl"), "utf8").trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(rows.map((r) => r.id), [1, 2, 3, 4]);
    assert.deepEqual(rows[0], {
      id: 1,
      prompt: "ok one",
      llm_response: "ok one",
      llm_error: null,
      llm_provider: "echo",
      llm_model: "m1",
    });
    assert.equal(rows[1].llm_response, null);
    assert.match(rows[1].llm_error, /fail_on/);
    assert.match(rows[2].llm_error, /empty prompt/);
    const again = await t.run([], { force: true });
    assert.deepEqual(
      [again.ok, again.cached, again.errors],
      [0, 2, 2],
      "errors are retried, successes cached",
    );
    const errorEvents = t.events.filter((e) => e.type === "row" && e.outcome === "error");
    assert.equal(errorEvents.length, 2);
  });

  it("refuses to overwrite an existing output without force, and asks when it can", async () => {
    const t = setup(
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: m\nmode: sync\noutput: { path: out.csv }\n",
      {
        "in.csv": CSV,
        "out.csv": "precious\n",
      },
    );
    await assert.rejects(
      () => t.run(),
      (e: unknown) => e instanceof LoomUsageError && /pass --force/.test(e.message),
    );
    assert.equal(readFileSync(join(t.dir, "out.csv"), "utf8"), "precious\n");
    await assert.rejects(
      () => t.run([], { confirmOverwrite: async () => false }),
      /left as it was/,
    );
    const asked: string[] = [];
    await t.run([], { confirmOverwrite: async (p) => (asked.push(p), true) });
    assert.deepEqual(asked, [join(t.dir, "out.csv")]);
    assert.notEqual(readFileSync(join(t.dir, "out.csv"), "utf8"), "precious\n");
  });

  it("fails before any work when the prompt names a missing column, citing the job file", async () => {
    const t = setup(
      "dataset: { path: in.csv }\nprompt:\n  template: 'Say {{txt}}'\nprovider: echo\nmodel: m\nmode: sync\n",
      { "in.csv": CSV },
    );
    await assert.rejects(() => t.run(), (e: unknown) => {
      assert.ok(e instanceof LoomJobError);
      assert.match(
        e.message,
        /job\.yaml:3:13: prompt\.template: names column "txt", which the dataset lacks \(columns: "id", "text"\)/,
      );
      return true;
    });
    assert.ok(!t.events.some((e) => e.type === "row"));
    assert.deepEqual(readdirSync(t.dir).sort(), ["in.csv", "job.yaml"]);
  });

  it("says a provider without a batch API cannot run in batch mode (a usage error)", async () => {
    const t = setup(
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: odd\nmodel: m\n",
      { "in.csv": CSV },
    );
    await assert.rejects(
      () => t.run([], { registry: registryWith(async () => ({ text: "x" })) }),
      (e: unknown) =>
        e instanceof LoomUsageError && e.exitCode === 2 &&
        /has no batch mode; run it with --sync/.test(e.message),
    );
  });

  it("stops on abort without writing the output; a rerun resumes from the cache", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => `${i},row ${i}`).join("\n");
    const t = setup(
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nprovider_options: { latency_ms: 5 }\nmodel: m\nmode: sync\n" +
        "output: { path: out.csv }\nsync: { workers: 2 }\n",
      { "in.csv": `id,text\n${rows}\n` },
    );
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(
      () =>
        t.run([], {
          signal: controller.signal,
          onEvent: (e) => {
            if (e.type === "row" && ++seen === 10) controller.abort(new Error("interrupted"));
          },
        }),
      (e: unknown) =>
        e instanceof LoomInterruptedError && e.exitCode === 130 &&
        /run the same command again/.test(e.message),
    );
    assert.ok(!existsSync(join(t.dir, "out.csv")));
    assert.deepEqual(readdirSync(t.dir).filter((f) => f.includes("loom-tmp")), []);
    const resumed = await t.run();
    assert.ok(resumed.cached >= 10, `cached ${resumed.cached}`);
    assert.equal(resumed.ok + resumed.cached, 40);
  });

  it("reads every format gzipped and writes the output uncompressed, named without .gz", async () => {
    const inputs: Record<string, string> = {
      "a.csv.gz": 'id,prompt\n1,hello\n2,"a, b"\n',
      "b.json.gz": '[{"id":1,"prompt":"hello"},{"id":2,"prompt":"a, b"}]',
      "c.jsonl.gz": '{"id":1,"prompt":"hello"}\n{"id":2,"prompt":"a, b"}\n',
    };
    const dir = tempDir();
    for (const [name, text] of Object.entries(inputs)) {
      writeFileSync(join(dir, name), gzipSync(text));
    }
    for (const name of Object.keys(inputs)) {
      const job = await loadJob({
        overrides: [
          { path: ["dataset", "path"], value: name, flag: "--file" },
          { path: ["provider"], value: "echo", flag: "--provider" },
          { path: ["model"], value: "m", flag: "--model" },
          { path: ["mode"], value: "sync", flag: "--sync" },
        ],
        cwd: dir,
      });
      const summary = await runJob(job, { env: { LOOM_HOME: join(dir, "home") } });
      assert.equal(summary.ok + summary.cached, 2, name);
      const out = readFileSync(summary.output!, "utf8");
      assert.ok(
        summary.output!.endsWith(
          name.replace(/\.gz$/, "").replace(/^(\w)\./, "$1_results_echo_m."),
        ),
        summary.output,
      );
      assert.ok(out.includes("a, b") && out.includes("hello"), `${name}: ${out}`);
    }
    assert.equal(
      readFileSync(join(dir, "a_results_echo_m.csv"), "utf8"),
      'id,prompt,llm_response,llm_error\n1,hello,hello,\n2,"a, b","a, b",\n',
    );
  });

  it("names the row and file when a gzipped input is corrupt, before any work", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.csv.gz"), "this is not gzip");
    const job = await loadJob({
      overrides: [
        { path: ["dataset", "path"], value: "bad.csv.gz", flag: "--file" },
        { path: ["provider"], value: "echo", flag: "--provider" },
        { path: ["model"], value: "m", flag: "--model" },
        { path: ["mode"], value: "sync", flag: "--sync" },
      ],
      cwd: dir,
    });
    await assert.rejects(
      () => runJob(job, { env: { LOOM_HOME: join(dir, "home") } }),
      /bad\.csv\.gz: not a valid gzip file/,
    );
  });
});

/** A registry with a provider that misbehaves in the ways a buggy or hostile plugin might. */
function registryWith(generate: (prompt: string) => Promise<unknown>): Registry {
  const registry = new Registry();
  registry.register({
    apiVersion: 1,
    kind: "provider",
    name: "odd",
    create: () => ({
      specificationVersion: "loom.provider.v1",
      name: "odd",
      capabilities: { sync: true, batch: false, tokens: false },
      generate: (request) => generate(request.messages[0].content) as Promise<GenerateResult>,
    }),
  });
  return registry;
}

const ODD_JOB =
  "dataset: { path: in.csv }\nprovider: odd\nmodel: m\nmode: sync\noutput: { path: out.csv }\n";

describe("hostile plugins and inputs", () => {
  it("turns a provider answer without text into that row's error; the other rows are written", async () => {
    const t = setup(ODD_JOB, { "in.csv": "prompt\na\nb\nc\n" });
    const registry = registryWith(async (p) => (p === "b" ? undefined : { text: p.toUpperCase() }));
    const summary = await t.run([], { registry });
    assert.deepEqual([summary.ok, summary.errors], [2, 1]);
    assert.equal(
      readFileSync(join(t.dir, "out.csv"), "utf8"),
      "prompt,llm_response,llm_error\na,A,\nb,,provider odd returned no answer text (a bug in the provider plugin)\nc,C,\n",
    );
  });

  it("never writes the API key, even when a provider quotes it in an error", async () => {
    const key = "sk-test-secret-0123456789";
    const t = setup(ODD_JOB, { "in.csv": "prompt\na\nb\n" });
    const registry = registryWith(async (p) => {
      if (p === "a") throw new Error(`401 Incorrect API key provided: ${key}`);
      return { text: p };
    });
    await t.run([], { registry, apiKey: key });
    const written = readFileSync(join(t.dir, "out.csv"), "utf8");
    assert.match(written, /Incorrect API key provided: \[redacted\]/);
    assert.ok(!JSON.stringify(t.events).includes(key), "events");
    for (const file of filesUnder(t.dir)) {
      assert.ok(!readFileSync(file, "utf8").includes(key), file);
    }
    const fatal = registryWith(async () => {
      throw new LoomProviderError(`bad key ${key}`, { status: 401, fatal: true });
    });
    await assert.rejects(
      () => t.run([], { registry: fatal, apiKey: key, force: true }),
      (e: unknown) => {
        assert.ok(
          !(e as Error).message.includes(key) && (e as Error).message.includes("[redacted]"),
        );
        return true;
      },
    );
  });

  it("refuses a dataset that is not a regular file (it is read twice)", async () => {
    const t = setup(
      "dataset: { path: /dev/null, format: csv }\nprovider: echo\nmodel: m\nmode: sync\noutput: { path: out.csv }\n",
      {},
    );
    await assert.rejects(() => t.run(), /not a regular file.*save it to a file first/);
  });

  it("names the default output after the format when dataset.format overrides the extension", async () => {
    const t = setup(
      "dataset: { path: in.txt, format: csv }\nprovider: echo\nmodel: m\nmode: sync\n",
      { "in.txt": "prompt\nhi\n" },
    );
    const summary = await t.run();
    assert.equal(summary.output, join(t.dir, "in_results_echo_m.csv"));
  });

  it("checks columns against a header even when there are no rows", async () => {
    const t = setup(
      "dataset: { path: in.csv }\nprompt: { column: nosuch }\nprovider: echo\nmodel: m\nmode: sync\n",
      { "in.csv": "id,text\n" },
    );
    await assert.rejects(() => t.run(), /no column "nosuch"/);
  });

  it("writes through a symbolic link, and refuses a directory as output before any work", async () => {
    const t = setup(ODD_JOB, { "in.csv": "prompt\na\n" });
    mkdirSync(join(t.dir, "real"));
    writeFileSync(join(t.dir, "real", "target.csv"), "old\n");
    symlinkSync(join(t.dir, "real", "target.csv"), join(t.dir, "out.csv"));
    const registry = registryWith(async (p) => ({ text: p }));
    await t.run([], { registry, force: true });
    assert.ok(lstatSync(join(t.dir, "out.csv")).isSymbolicLink(), "the link is kept");
    assert.equal(
      readFileSync(join(t.dir, "real", "target.csv"), "utf8"),
      "prompt,llm_response,llm_error\na,a,\n",
    );
    mkdirSync(join(t.dir, "adir"));
    let calls = 0;
    const counting = registryWith(async (p) => (calls++, { text: p }));
    await assert.rejects(
      () =>
        t.run([{ path: ["output", "path"], value: "adir", flag: "--output" }], {
          registry: counting,
          force: true,
        }),
      /--output: output\.path: .*is a directory/,
    );
    assert.equal(calls, 0);
  });

  it("treats an unreadable cache as a miss, with one warning", async () => {
    const t = setup(ODD_JOB, { "in.csv": "prompt\na\nb\n" });
    const registry = registryWith(async (p) => ({ text: p }));
    const job = await loadJob({ file: join(t.dir, "job.yaml"), cwd: t.dir });
    writeFileSync(join(t.dir, "not-a-dir"), "");
    const events: RunEvent[] = [];
    const summary = await runJob(job, {
      registry,
      env: { LOOM_HOME: join(t.dir, "not-a-dir") },
      onEvent: (e) => events.push(e),
    });
    assert.equal(summary.ok, 2);
    const warnings = events.filter((e) => e.type === "warning");
    assert.ok(warnings.length >= 1 && warnings.length <= 2, JSON.stringify(warnings));
    assert.match(JSON.stringify(warnings), /cannot (read|write) the cache/);
  });

  it("reports provider and provider option problems at their place in the job file", async () => {
    const t = setup("dataset: { path: in.csv }\nprovider: ecko\nmodel: m\nmode: sync\n", {
      "in.csv": "prompt\na\n",
    });
    await assert.rejects(() => t.run(), /job\.yaml:2:11: provider: unknown provider "ecko"/);
    const u = setup(
      "dataset: { path: in.csv }\nprovider: echo\nprovider_options: { latncy_ms: 5 }\nmodel: m\nmode: sync\n",
      { "in.csv": "prompt\na\n" },
    );
    await assert.rejects(
      () => u.run(),
      /job\.yaml:3:19: provider_options: echo: unknown provider option\(s\) latncy_ms/,
    );
    const v = setup(
      "dataset: { path: in.csv, options: { delimter: ';' } }\nprovider: echo\nmodel: m\nmode: sync\n",
      { "in.csv": "prompt\na\n" },
    );
    await assert.rejects(
      () => v.run(),
      /job\.yaml:1:35: dataset\.options: .*unknown csv option "delimter"/,
    );
  });
});

describe("API keys", () => {
  /** A registry with a provider that needs ACME_API_KEY and quotes its key in every error. */
  function keyed(seen: string[]): Registry {
    const registry = new Registry();
    registry.register({
      apiVersion: 1,
      kind: "provider",
      name: "keyed",
      apiKey: { envVars: () => ["ACME_API_KEY"] },
      create: (options) => ({
        specificationVersion: "loom.provider.v1",
        name: "keyed",
        capabilities: { sync: true, batch: false, tokens: false },
        generate: (request) => {
          seen.push(String(options.apiKey));
          if (request.messages[0].content === "fail") {
            return Promise.reject(new Error(`key ${options.apiKey} refused`));
          }
          return Promise.resolve({ text: "ok" });
        },
      }),
    });
    return registry;
  }
  const JOB =
    "dataset: { path: in.csv }\nprovider: keyed\nmodel: m\nmode: sync\noutput: { path: out.csv }\n";

  it("stops before any work when the key is missing, naming the variable", async () => {
    const t = setup(JOB, { "in.csv": "prompt\na\n" });
    const seen: string[] = [];
    await assert.rejects(() => t.run([], { registry: keyed(seen), cwd: t.dir }), (e: unknown) => {
      assert.ok(e instanceof LoomUsageError);
      assert.match(e.message, /no API key for keyed: set ACME_API_KEY/);
      return true;
    });
    assert.deepEqual(seen, []);
    assert.ok(!existsSync(join(t.dir, "out.csv")));
  });

  it("takes the key from .env in the working directory, and scrubs it from what it writes", async () => {
    const t = setup(JOB, {
      "in.csv": "prompt\na\nfail\n",
      ".env": "ACME_API_KEY=acme-secret-from-dotenv\n",
    });
    const seen: string[] = [];
    const summary = await t.run([], { registry: keyed(seen), cwd: t.dir });
    assert.deepEqual(seen.sort(), ["acme-secret-from-dotenv", "acme-secret-from-dotenv"]);
    assert.equal(summary.errors, 1);
    const out = readFileSync(join(t.dir, "out.csv"), "utf8");
    assert.match(out, /key \[redacted\] refused/);
    assert.ok(!out.includes("acme-secret-from-dotenv"));
  });
});
