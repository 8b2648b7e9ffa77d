/**
 * The CLI's manners through the real CLI: plan without a key, `--base-url` on tokens and plan,
 * a failed connection that names where, `-o -`, unknown commands, the `loom:` prefix of every
 * error, and what the help lists.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { useEmulator } from "../plugins/providers/_shared/test-emulator.ts";

const holder = useEmulator({ provider: "anthropic", models: "any" });

function setup() {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), "id,text\n1,hello there\n2,good morning\n");
  return { dir, opts: { cwd: dir, env: { LOOM_HOME: join(dir, "home") } } };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("plan and --dry-run send nothing, so they need no key", () => {
  for (const args of [["plan"], ["run", "--dry-run"]]) {
    it(`${args.join(" ")} works without an API key`, async () => {
      const t = setup();
      const result = await runCli([
        ...args,
        "-f",
        "in.csv",
        "-p",
        "openai",
        "-m",
        "gpt-4o-mini",
        "-c",
        "text",
      ], t.opts);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^plan: 2 rows from in\.csv/m);
    });
  }

  it("plan --count-tokens still needs the key", async () => {
    const t = setup();
    const result = await runCli([
      "plan",
      "-f",
      "in.csv",
      "-p",
      "anthropic",
      "-m",
      "claude-sonnet-4-5",
      "-c",
      "text",
      "--count-tokens",
    ], t.opts);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^loom: no API key for anthropic: set ANTHROPIC_API_KEY/m);
  });

  it("tokens and plan take --base-url, and count against it", async () => {
    const t = setup();
    const { emu } = holder;
    const common = [
      "-f",
      "in.csv",
      "-p",
      "anthropic",
      "-m",
      "claude-sonnet-4-5",
      "-c",
      "text",
      "--base-url",
      emu.baseURL,
      "--api-key",
      emu.apiKey,
    ];
    const tokens = await runCli(["tokens", ...common], t.opts);
    assert.equal(tokens.code, 0, tokens.stderr);
    assert.match(
      tokens.stdout,
      /Total input tokens: \d+ across 2 prompts \(provider=anthropic, model=claude-sonnet-4-5, errors=0\)/,
    );
    const plan = await runCli(["plan", ...common, "--count-tokens", "--json"], t.opts);
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(JSON.parse(plan.stdout.trim().split("\n").at(-1)!).inputSource, "counted");
    assert.equal(
      emu.log.count(/count_tokens/),
      4,
      "two prompts counted by each command, at the emulator",
    );
  });

  it("a connection that fails names the host and port it tried", async () => {
    const t = setup();
    const port = await closedPort();
    writeFileSync(join(t.dir, "one.csv"), "text\nhi\n");
    const result = await runCli(
      [
        "tokens",
        "-f",
        "one.csv",
        "-p",
        "anthropic",
        "-m",
        "claude-sonnet-4-5",
        "-c",
        "text",
        "--api-key",
        "fake",
        "--base-url",
        `http://127.0.0.1:${port}`,
      ],
      t.opts,
    );
    assert.match(
      result.stderr,
      new RegExp(`^loom: row 1: anthropic: .*127\\.0\\.0\\.1:${port}`, "m"),
    );
  });
});

describe("-o - writes to standard output", () => {
  it("sync: the rows go to stdout, progress and the summary to stderr, and no file is made", async () => {
    const t = setup();
    const result = await runCli([
      "run",
      "-f",
      "in.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "-c",
      "text",
      "--sync",
      "-o",
      "-",
    ], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      "id,text,llm_response,llm_error\n1,hello there,hello there,\n2,good morning,good morning,\n",
    );
    assert.match(result.stderr, /^loom: wrote standard output: 2 rows/m);
    assert.deepEqual(readdirSync(t.dir).sort(), ["home", "in.csv"]);
  });

  it("plan -o - shows the output as -, and makes no file", async () => {
    const t = setup();
    const result = await runCli([
      "plan",
      "-f",
      "in.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "-c",
      "text",
      "--sync",
      "-o",
      "-",
    ], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^plan: 2 rows from in\.csv → - \(echo m, sync mode\)/m);
    assert.deepEqual(readdirSync(t.dir).sort(), ["in.csv"]);
  });

  it("batch mode refuses it (a batch is merged later, into a file)", async () => {
    const t = setup();
    for (const args of [["run"], ["run", "--dry-run"], ["plan"]]) {
      const result = await runCli([
        ...args,
        "-f",
        "in.csv",
        "-p",
        "echo",
        "-m",
        "m",
        "-c",
        "text",
        "--batch",
        "-o",
        "-",
      ], t.opts);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.stderr, /^loom: -o - .*sync/m);
    }
    assert.ok(!existsSync(join(t.dir, "-")));
  });
});

describe("usage errors", () => {
  it("an unknown command suggests the closest one; a file of that name still runs", async () => {
    const t = setup();
    const typo = await runCli(["fecth"], t.opts);
    assert.equal(typo.code, 2);
    assert.equal(
      typo.stderr,
      'loom: unknown command "fecth" (did you mean fetch?); see loom --help\n',
    );
    const far = await runCli(["zzzzzz"], t.opts);
    assert.equal(far.code, 2);
    assert.match(far.stderr, /^loom: unknown command "zzzzzz"; see loom --help\n$/);
    writeFileSync(
      join(t.dir, "lsit"),
      "dataset: { path: in.csv }\nprovider: echo\nmodel: m\nmode: sync\nprompt: { column: text }\n",
    );
    const file = await runCli(["lsit"], t.opts);
    assert.equal(file.code, 0, file.stderr);
  });

  it("every error starts with loom:", async () => {
    const t = setup();
    const cases = [
      ["run", "--bogus"],
      ["fetch", "--poll"],
      ["status"],
      ["run", "-f", "in.csv", "-p", "nope", "-m", "m"],
      ["tokens", "-f", "in.csv", "-p", "openrouter", "-m", "a/b", "-c", "text", "--api-key", "k"],
    ];
    for (const args of cases) {
      const result = await runCli(args, t.opts);
      assert.equal(result.code, 2, args.join(" "));
      assert.ok(result.stderr.length > 0, args.join(" "));
      for (
        const line of result.stderr.trimEnd().split("\n").filter((l) => l && !l.startsWith(" "))
      ) {
        assert.match(line, /^loom: /, `${args.join(" ")}: ${line}`);
      }
    }
  });

  it("run --help lists the providers; the top-level help lists the exit codes", async () => {
    const run = await runCli(["run", "--help"]);
    for (
      const name of ["anthropic", "echo", "google", "openai", "openai-compatible", "openrouter"]
    ) assert.ok(run.stdout.includes(name), name);
    const top = await runCli(["--help"]);
    assert.match(top.stdout, /Exit codes:[\s\S]*\b0\b[\s\S]*\b1\b[\s\S]*\b2\b[\s\S]*\b130\b/);
  });
});
