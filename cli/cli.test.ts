/**
 * End-to-end tests of the `loom` command as a real child process: Deno runs cli/main.ts, Node
 * runs dist/cli/main.js.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "csv-parse/sync";
import { runtimeName } from "../core/base/runtime.ts";
import { VERSION } from "../core/base/version.ts";
import { repoRoot } from "../core/test-support/paths.ts";
import { runCli, spawnCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { withHomeStore } from "../core/test-support/state.ts";
import { cacheKey } from "../core/state/cache.ts";
import { loadJob } from "../core/job/load.ts";
import { buildRequest } from "../core/data/request.ts";

const jobs = join(repoRoot(), "jobs");

describe("loom run", () => {
  it("runs jobs/hello.yaml end to end from another directory; every row matches its input", async () => {
    const dir = tempDir();
    const out = join(dir, "hello.csv");
    const result = await runCli(["run", join(jobs, "hello.yaml"), "--output", "hello.csv"], {
      cwd: dir,
      env: { LOOM_HOME: join(dir, "home") },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /wrote .*hello\.csv: 10 rows \(10 answered, 0 from cache, 0 failed\)/,
    );
    const input = parse(readFileSync(join(jobs, "data", "hello.csv")), {
      columns: true,
      bom: true,
    }) as Record<string, string>[];
    const output = parse(readFileSync(out), { columns: true, bom: true }) as Record<
      string,
      string
    >[];
    assert.equal(output.length, input.length);
    output.forEach((row, i) => {
      const { llm_response, llm_error, llm_provider, llm_model, ...rest } = row;
      assert.deepEqual(rest, input[i], `row ${i + 1} keeps its columns`);
      assert.equal(
        llm_response,
        `Summarize in one sentence (${input[i].topic}):\n\n${input[i].text}`,
        `row ${i + 1}`,
      );
      assert.deepEqual([llm_error, llm_provider, llm_model], ["", "echo", "echo-1"]);
    });
    const again = await runCli(["run", join(jobs, "hello.yaml"), "-o", "hello.csv", "--force"], {
      cwd: dir,
      env: { LOOM_HOME: join(dir, "home") },
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 answered, 10 from cache/);
  });

  it("runs from flags alone, with the short forms", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "d.jsonl"), '{"id":"a","text":"one"}\n{"id":"b","text":"two"}\n');
    const result = await runCli(
      [
        "run",
        "-f",
        "d.jsonl",
        "-p",
        "echo",
        "-m",
        "org/model:v1",
        "-c",
        "text",
        "--sync",
        "-w",
        "2",
        "--with-meta",
      ],
      { cwd: dir, env: { LOOM_HOME: join(dir, "home") } },
    );
    assert.equal(result.code, 0, result.stderr);
    const out = join(dir, "d_results_echo_org_model_v1.jsonl");
    const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => [r.id, r.llm_response, r.llm_model]), [[
      "a",
      "one",
      "org/model:v1",
    ], ["b", "two", "org/model:v1"]]);
  });

  it("exits 1 when every row failed, and still writes them with their errors", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "d.csv"), "prompt\nBAD one\nBAD two\n");
    writeFileSync(
      join(dir, "j.yaml"),
      "dataset: { path: d.csv }\nprovider: echo\nprovider_options: { fail_on: BAD }\nmodel: m\nmode: sync\n",
    );
    const result = await runCli(["j.yaml"], { cwd: dir, env: { LOOM_HOME: join(dir, "home") } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /2 row\(s\) failed/);
    assert.match(
      readFileSync(join(dir, "d_results_echo_m.csv"), "utf8"),
      /BAD one,,"echo: prompt contains ""BAD"" \(fail_on\)"/,
    );
  });

  it("loads a third-party plugin module named in the job", async () => {
    const dir = tempDir();
    const result = await runCli(["run", join(jobs, "plugin-demo.yaml"), "-o", join(dir, "g.tsv")], {
      cwd: dir,
      env: { LOOM_HOME: join(dir, "home") },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      readFileSync(join(dir, "g.tsv"), "utf8"),
      "lang\tgreeting\tllm_response\tllm_error\nen\thello there\tACME: HELLO THERE\t\nfr\tbonjour à tous\tACME: BONJOUR À TOUS\t\nde\tguten Tag\tACME: GUTEN TAG\t\n",
    );
  });
});

describe("progress", () => {
  it("prints plain periodic lines when stderr is not a terminal", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "d.csv"),
      `prompt\n${Array.from({ length: 60 }, (_, i) => `p${i}`).join("\n")}\n`,
    );
    writeFileSync(
      join(dir, "j.yaml"),
      "dataset: { path: d.csv }\nprovider: echo\nprovider_options: { latency_ms: 10 }\nmodel: m\nmode: sync\nsync: { workers: 2 }\n",
    );
    // 60 rows at 10 ms on 2 workers take at least 300 ms, so a 50 ms interval must print lines.
    const result = await runCli(["j.yaml"], {
      cwd: dir,
      env: { LOOM_HOME: join(dir, "home"), LOOM_PROGRESS_INTERVAL: "0.05" },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /^loom: 60 rows from .*d\.csv \(sync\) → .*d_results_echo_m\.csv$/m,
    );
    assert.match(
      result.stderr,
      /^loom: \d+\/60 rows \(\d+%\) \| cached 0 \| errors 0 \| [\d.]+ rows\/s \| ETA \S+$/m,
    );
    assert.ok(!result.stderr.includes("\x1b["), "no terminal escapes in plain output");
  });

  it("prints every event as a JSON line with --json", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "d.csv"), "id,prompt\nr1,a\nr2,b\nr3,\n");
    const result = await runCli(
      ["run", "-f", "d.csv", "-p", "echo", "-m", "m", "--sync", "--json"],
      {
        cwd: dir,
        env: { LOOM_HOME: join(dir, "home") },
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const events = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => e.type), ["plan", "row", "row", "row", "done"]);
    assert.equal(events[0].rows, 3);
    assert.deepEqual(events.at(-1).summary.rows, 3);
    const rows = events.filter((e) => e.type === "row").sort((a, b) => a.index - b.index);
    assert.deepEqual(rows.map((e) => [e.index, e.id, e.outcome]), [
      [0, "r1", "ok"],
      [1, "r2", "ok"],
      [2, "r3", "error"],
    ]);
    assert.match(rows[2].error, /empty prompt/);
  });
});

describe("loom usage", () => {
  it("has --help on every command and --version", async () => {
    for (
      const args of [["--help"], ["run", "--help"], ["cache", "--help"], [
        "cache",
        "clear",
        "--help",
      ]]
    ) {
      const result = await runCli(args);
      assert.equal(result.code, 0, args.join(" "));
      assert.match(result.stdout, /Usage: loom/, args.join(" "));
      // --state works with every command, so every command's help names it.
      assert.match(result.stdout, /--state <url> +the state store/, args.join(" "));
    }
    const run = await runCli(["run", "--help"]);
    for (
      const flag of [
        "--file",
        "--provider",
        "--model",
        "--col",
        "--output",
        "--sync",
        "--batch",
        "--workers",
        "--no-cache",
        "--force",
        "--with-meta",
        "--api-key",
      ]
    ) {
      assert.ok(run.stdout.includes(flag), flag);
    }
    const version = await runCli(["--version"]);
    assert.equal(version.code, 0);
    // The child runs on the same executable as this test, so it names this runtime and version.
    const runtime = runtimeName() === "deno"
      ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno}`
      : `Node ${process.versions.node}`;
    assert.equal(version.stdout.trim(), `loom ${VERSION} (${runtime})`);
    assert.match(version.stdout, /^loom \d+\.\d+\.\d+\S* \((Node|Deno) \d+\.\d+\.\d+\)\n$/);
  });

  it("exits 2 on usage errors, listing every problem of a broken job with its position", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "bad.yaml"),
      "dataset: { path: d.csv }\nprovider: echo\nmodle: m\nsync: { workers: zero }\n",
    );
    const bad = await runCli(["bad.yaml"], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml:3:1: .*modle/);
    assert.match(bad.stderr, /bad\.yaml:4:\d+: sync\.workers/);
    assert.match(bad.stderr, /model/);
    const bare = await runCli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /Usage: loom/);
    assert.equal((await runCli(["run", "--frobnicate"])).code, 2);
    assert.equal((await runCli(["run"])).code, 2);
    const missing = await runCli(["nope.yaml"], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml/);
    const conflict = await runCli([
      "run",
      "-f",
      "d.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "--sync",
      "--batch",
    ], { cwd: dir });
    assert.equal(conflict.code, 2);
  });

  it("cache clear refuses without --yes when it cannot ask, and clears with it", async () => {
    const dir = tempDir();
    const home = join(dir, "home");
    writeFileSync(join(dir, "d.csv"), "prompt\nhello\n");
    assert.equal(
      (await runCli(["run", "-f", "d.csv", "-p", "echo", "-m", "m", "--sync"], {
        cwd: dir,
        env: { LOOM_HOME: home },
      })).code,
      0,
    );
    const entries = () => withHomeStore(home, async (s) => (await s.cache.stats()).entries);
    assert.equal(await entries(), 1);
    const refused = await runCli(["cache", "clear"], { env: { LOOM_HOME: home } });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--yes/);
    assert.equal(await entries(), 1);
    const cleared = await runCli(["cache", "clear", "--yes"], { env: { LOOM_HOME: home } });
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /removed 1 cached answer/);
    assert.equal(await entries(), 0);
  });
});

/**
 * A provider plugin that logs every call to a file before answering, so a test can tell exactly
 * which rows were sent in which run.
 */
const COUNTING_PLUGIN = `import { appendFileSync } from "node:fs";
export default { apiVersion: 1, kind: "provider", name: "counting", create: (o) => ({
  specificationVersion: "loom.provider.v1", name: "counting", capabilities: { sync: true, batch: false, tokens: false },
  async generate(r, c) {
    const prompt = r.messages[0].content;
    appendFileSync(o.log, prompt + "\\n");
    await new Promise((ok, no) => { const t = setTimeout(ok, o.latency_ms); c?.signal?.addEventListener("abort", () => { clearTimeout(t); no(c.signal.reason); }); });
    return { text: "answer to " + prompt };
  } }) };
`;

/** A job over `rows` prompts with the counting provider; returns paths. */
function countingJob(rows: number) {
  const dir = tempDir();
  writeFileSync(join(dir, "counting.js"), COUNTING_PLUGIN);
  writeFileSync(
    join(dir, "in.csv"),
    `id,prompt\n${Array.from({ length: rows }, (_, i) => `${i},prompt ${i}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    "dataset: { path: in.csv }\nprovider: counting\nprovider_options: { log: calls.log, latency_ms: 15 }\n" +
      "model: m\nmode: sync\noutput: { path: out.csv }\nsync: { workers: 4 }\nplugins: [./counting.js]\n",
  );
  const log = join(dir, "calls.log");
  const calls =
    () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []);
  return { dir, home: join(dir, "home"), calls };
}

/** The prompts of a {@link countingJob} whose answers are in its cache, looked up by cache key. */
async function cachedPrompts(
  t: ReturnType<typeof countingJob>,
  rows: number,
): Promise<Set<string>> {
  const { spec } = await loadJob({ file: join(t.dir, "job.yaml"), cwd: t.dir });
  return withHomeStore(t.home, async (store) => {
    const done = new Set<string>();
    for (let i = 0; i < rows; i++) {
      const built = buildRequest(spec, { id: String(i), prompt: `prompt ${i}` });
      assert.ok("request" in built);
      const cached = await store.cache.get(cacheKey("counting", built.request));
      if (cached !== undefined) done.add(`prompt ${i}`);
    }
    return done;
  });
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await sleep(10);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

describe("interrupted runs", () => {
  it("killed with SIGKILL midway, a rerun completes from the cache without repeating a finished call", async () => {
    const rows = 300;
    const t = countingJob(rows);
    const env = { LOOM_HOME: t.home };
    const first = spawnCli(["job.yaml"], { cwd: t.dir, env });
    await waitFor(() => t.calls().length >= 40, "40 calls");
    first.child.kill("SIGKILL");
    const killed = await first.done;
    assert.equal(killed.signal, "SIGKILL");
    assert.ok(!existsSync(join(t.dir, "out.csv")), "no output after a kill");

    const done = await cachedPrompts(t, rows);
    const callsBefore = t.calls().length;
    assert.ok(done.size > 0 && done.size < rows, `cached ${done.size}`);

    const second = await runCli(["job.yaml"], { cwd: t.dir, env });
    assert.equal(second.code, 0, second.stderr);
    const rerunCalls = t.calls().slice(callsBefore);
    assert.equal(
      rerunCalls.length,
      rows - done.size,
      "the rerun calls exactly the unfinished rows",
    );
    for (const prompt of rerunCalls) {
      assert.ok(!done.has(prompt), `${prompt} was finished but called again`);
    }
    assert.match(
      second.stdout,
      new RegExp(`${rows - done.size} answered, ${done.size} from cache, 0 failed`),
    );

    const output = parse(readFileSync(join(t.dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.equal(output.length, rows);
    output.forEach((row, i) =>
      assert.deepEqual(row, {
        id: String(i),
        prompt: `prompt ${i}`,
        llm_response: `answer to prompt ${i}`,
        llm_error: "",
      })
    );
    assert.deepEqual(
      readdirSync(t.dir).filter((f) => f.endsWith(".loom-tmp")),
      [],
      "the killed run's temporary file is swept",
    );
  });

  it("Ctrl-C (SIGINT) stops cleanly with exit code 130, writes no output, and a rerun resumes", async () => {
    const rows = 300;
    const t = countingJob(rows);
    const env = { LOOM_HOME: t.home };
    const first = spawnCli(["job.yaml"], { cwd: t.dir, env });
    await waitFor(() => t.calls().length >= 20, "20 calls");
    first.child.kill("SIGINT");
    const stopped = await first.done;
    // Deno, as the parent, reports a child's exit status 128+n after kill(signal n) as death by
    // that signal; Node reports the exit code. The message proves the handler ran either way.
    if (stopped.signal === "SIGINT" && runtimeName() === "deno") assert.equal(stopped.code, null);
    else assert.equal(stopped.code, 130, `${stopped.signal} ${stopped.stderr}`);
    assert.match(stopped.stderr, /interrupted after \d+ of 300 rows/);
    assert.ok(!existsSync(join(t.dir, "out.csv")));
    assert.deepEqual(readdirSync(t.dir).filter((f) => f.endsWith(".loom-tmp")), []);
    const done = (await cachedPrompts(t, rows)).size;
    const second = await runCli(["job.yaml"], { cwd: t.dir, env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`${rows - done} answered, ${done} from cache`));
  });
});
