/**
 * `loom tokens` in one reading of the input: the job is checked in the same pass that counts
 * (before the first count where a header names the columns, at the end for JSON and JSONL), and
 * the progress total is the rows once the reading has ended.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { csvFormat } from "../../plugins/formats/csv/mod.ts";
import jsonlPlugin from "../../plugins/formats/jsonl/mod.ts";
import { LoomJobError, LoomUsageError } from "../base/errors.ts";
import { loadJob } from "../job/load.ts";
import { Registry } from "../plugins/registry.ts";
import type { FormatV1 } from "../spec/format.ts";
import { tempDir } from "../test-support/temp.ts";
import { planJobCost } from "./estimate.ts";
import { countJobTokens, type CountProgress } from "./tokens.ts";

/** What the test plugins saw: dataset openings and counting calls. */
interface Seen {
  opens: number;
  counts: number;
}

/**
 * A registry with `spy` (echo, its counting calls counted) and the formats `counted-csv` and
 * `counted-jsonl` (the built-in ones, their openings counted).
 */
function spyRegistry(seen: Seen): Registry {
  const registry = new Registry();
  registry.register({
    apiVersion: 1,
    kind: "provider",
    name: "spy",
    create: (options, context) => {
      const echo = createEchoProvider(options as Record<string, unknown>, context.home);
      return {
        ...echo,
        name: "spy",
        countTokens: (request, callOptions) => {
          seen.counts++;
          return echo.countTokens!(request, callOptions);
        },
      };
    },
  });
  const counted = (format: FormatV1): FormatV1 => ({
    ...format,
    open: (input, options) => {
      seen.opens++;
      return format.open(input, options);
    },
  });
  const jsonl = jsonlPlugin.create({}, {} as never) as FormatV1;
  for (const [name, format] of [["counted-csv", csvFormat], ["counted-jsonl", jsonl]] as const) {
    registry.register({ apiVersion: 1, kind: "format", name, create: () => counted(format) });
  }
  return registry;
}

/** A job over `file` (written with `text`) in format `counted-<kind>`, counted by `spy`. */
function setup(file: string, text: string, job: string) {
  const dir = tempDir();
  const seen: Seen = { opens: 0, counts: 0 };
  const registry = spyRegistry(seen);
  const kind = file.endsWith(".csv") ? "csv" : "jsonl";
  writeFileSync(join(dir, file), text);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: ${file}, format: counted-${kind} }\nprovider: spy\nmodel: m\n${job}`,
  );
  const env = { LOOM_HOME: join(dir, "home") };
  const load = () => loadJob({ file: join(dir, "job.yaml"), cwd: dir });
  return { seen, registry, env, load };
}

/** The error `loom plan` gives for the same job: `loom tokens` must give the same. */
async function planError(t: ReturnType<typeof setup>): Promise<Error> {
  try {
    await planJobCost(await t.load(), { env: t.env, registry: t.registry });
  } catch (error) {
    return error as Error;
  }
  throw new Error("planning succeeded");
}

/** The error `countJobTokens` throws for `t`'s job. */
async function countError(
  t: ReturnType<typeof setup>,
  onProgress?: (p: CountProgress) => void,
): Promise<Error> {
  try {
    await countJobTokens(await t.load(), { env: t.env, registry: t.registry, onProgress });
  } catch (error) {
    return error as Error;
  }
  throw new Error("counting succeeded");
}

const CSV = `id,text\n${
  Array.from({ length: 20 }, (_, i) => `${i},${"w".repeat(11)}${i}`).join("\n")
}\n`;

describe("loom plan --count-tokens: one reading", () => {
  it("opens the input once, plans and counts every prompt in that reading", async () => {
    const t = setup("in.csv", CSV, "prompt: { column: text }\noutput: { path: out.csv }\n");
    const { plan, estimate } = await planJobCost(await t.load(), {
      env: t.env,
      registry: t.registry,
      count: true,
    });
    assert.equal(t.seen.opens, 1, "the input is read once");
    assert.equal(t.seen.counts, 20);
    assert.equal(plan.rows, 20);
    assert.match(plan.output, /out\.csv$/);
    assert.deepEqual(
      [estimate.rows, estimate.requests, estimate.inputTokens, estimate.inputSource],
      [20, 20, 10 * 3 + 10 * 4, "counted"],
    );
    assert.equal(estimate.countErrors, 0);
  });

  it("gives the errors planning gives: a column the header lacks, before any count", async () => {
    const t = setup("in.csv", CSV, "prompt: { template: 'say {{txt}}' }\n");
    const expected = await planError(t);
    assert.ok(expected instanceof LoomJobError);
    await assert.rejects(
      planJobCost(await t.load(), { env: t.env, registry: t.registry, count: true }),
      (error: unknown) => {
        assert.ok(error instanceof LoomJobError);
        assert.equal(error.message, expected.message);
        assert.deepEqual(error.issues, expected.issues);
        return true;
      },
    );
    assert.equal(t.seen.counts, 0, "nothing was counted");
  });

  it("JSONL: a column no row has fails as planning does, once the reading ends", async () => {
    const rows = ['{"id":1,"text":"aaaa"}', '{"id":2,"body":"bbbb"}'];
    const t = setup("in.jsonl", rows.join("\n") + "\n", "prompt: { column: prompt }\n");
    const expected = await planError(t);
    const opens = t.seen.opens;
    await assert.rejects(
      planJobCost(await t.load(), { env: t.env, registry: t.registry, count: true }),
      (error: unknown) => {
        assert.ok(error instanceof LoomJobError);
        assert.equal(error.message, expected.message);
        return true;
      },
    );
    assert.equal(t.seen.opens - opens, 1, "the input is read once");
  });
});

describe("loom tokens: one reading", () => {
  it("opens the input once, and counts every prompt", async () => {
    const t = setup("in.csv", CSV, "prompt: { column: text }\n");
    const result = await countJobTokens(await t.load(), { env: t.env, registry: t.registry });
    assert.equal(t.seen.opens, 1, "the input is read once");
    assert.equal(t.seen.counts, 20);
    // 12 or 13 characters a prompt: 3 or 4 tokens at 4 characters a token (rounded up).
    assert.deepEqual([result.total, result.prompts, result.errors], [10 * 3 + 10 * 4, 20, 0]);
  });

  it("CSV: a column the prompt names but the header lacks fails as planning does, before any count", async () => {
    const t = setup("in.csv", CSV, "prompt: { template: 'say {{txt}} and {{id}}' }\n");
    const expected = await planError(t);
    assert.ok(expected instanceof LoomJobError);
    const error = await countError(t);
    assert.ok(error instanceof LoomJobError);
    assert.equal(error.message, expected.message);
    assert.deepEqual(error.issues, expected.issues);
    assert.match(error.message, /job\.yaml:\d+:\d+: prompt\.template: names column "txt"/);
    assert.equal(t.seen.counts, 0, "nothing was counted");
  });

  it("CSV: a job refused at the header leaves no file open", async (c) => {
    if (!existsSync("/proc/self/fd")) return c.skip("no /proc/self/fd here");
    const t = setup("in.csv", CSV, "prompt: { column: nope }\n");
    const open = () => readdirSync("/proc/self/fd").length;
    const before = open();
    for (let i = 0; i < 20; i++) await countError(t);
    assert.ok(open() - before < 10, `${open() - before} more files open after 20 refusals`);
  });

  it("CSV: an input that already has Loom's columns fails as planning does, before any count", async () => {
    const t = setup("in.csv", "text,llm_response\na,b\n", "prompt: { column: text }\n");
    const expected = await planError(t);
    const error = await countError(t);
    assert.ok(error instanceof LoomUsageError);
    assert.equal(error.message, expected.message);
    assert.match(error.message, /already has column\(s\) llm_response/);
    assert.equal(t.seen.counts, 0);
  });

  it("JSONL: a column no row has fails as planning does, once the reading ends", async () => {
    const rows = ['{"id":1,"text":"aaaa"}', '{"id":2,"body":"bbbb"}', '{"id":3,"text":"cc"}'];
    const t = setup("in.jsonl", rows.join("\n") + "\n", "prompt: { column: prompt }\n");
    const expected = await planError(t);
    assert.ok(expected instanceof LoomJobError);
    const progress: CountProgress[] = [];
    const error = await countError(t, (p) => progress.push(p));
    assert.ok(error instanceof LoomJobError);
    assert.equal(error.message, expected.message);
    assert.deepEqual(error.issues, expected.issues);
    assert.deepEqual(progress, [], "no progress is reported for a job that does not fit");
    // The columns listed are every row's, in first-seen order: the whole input was read.
    assert.match(error.message, /columns: "id", "text", "body"\)/);
  });

  it("JSONL: a row without the prompt column is a row error, the others are counted", async () => {
    const rows = ['{"id":1,"text":"aaaa"}', '{"id":2,"body":"bbbb"}', '{"id":3,"text":"cccccccc"}'];
    const t = setup("in.jsonl", rows.join("\n") + "\n", "prompt: { column: text }\n");
    const result = await countJobTokens(await t.load(), { env: t.env, registry: t.registry });
    assert.equal(t.seen.opens, 1);
    assert.deepEqual(
      [result.total, result.prompts, result.errors, result.estimated],
      [1 + 2, 2, 1, 0],
    );
    assert.equal(result.samples.length, 1);
    assert.match(result.samples[0], /^row 2: /);
  });

  it("JSONL: progress is reported from the first row that has the prompt column", async () => {
    const rows = Array.from(
      { length: 600 },
      (_, i) => JSON.stringify(i < 300 ? { id: i, body: "b" } : { id: i, text: "tttt" }),
    );
    const t = setup("in.jsonl", rows.join("\n") + "\n", "prompt: { column: text }\n");
    const progress: CountProgress[] = [];
    const result = await countJobTokens(await t.load(), {
      env: t.env,
      registry: t.registry,
      onProgress: (p) => progress.push(p),
    });
    assert.deepEqual([result.total, result.prompts, result.errors], [300, 300, 300]);
    assert.ok(progress.length > 0 && progress[0].done > 1, "the rows before it report nothing");
    const last = progress.at(-1)!;
    assert.deepEqual([last.done, last.total, last.totalKnown], [600, 600, true]);
  });

  it("an empty JSONL input counts nothing and fails nothing", async () => {
    const t = setup("in.jsonl", "", "prompt: { column: text }\n");
    const result = await countJobTokens(await t.load(), { env: t.env, registry: t.registry });
    assert.deepEqual([result.total, result.prompts, result.errors], [0, 0, 0]);
  });

  it("progress: the total is estimated from the bytes read, and exact once the reading ends", async () => {
    // Enough rows for the file to be read in several chunks.
    const lines = Array.from({ length: 30_000 }, (_, i) => `${i},"a prompt, number ${i}"`);
    const t = setup("in.csv", `id,text\n${lines.join("\n")}\n`, "prompt: { column: text }\n");
    const progress: CountProgress[] = [];
    const result = await countJobTokens(await t.load(), {
      env: t.env,
      registry: t.registry,
      onProgress: (p) => progress.push(p),
    });
    assert.equal(result.prompts, 30_000);
    assert.deepEqual(progress.map((p) => p.done), lines.map((_, i) => i + 1));
    for (const p of progress) {
      assert.ok(p.done <= p.total, `done ${p.done} within total ${p.total}`);
      if (p.totalKnown) assert.equal(p.total, 30_000);
    }
    const last = progress.at(-1)!;
    assert.deepEqual([last.done, last.total, last.totalKnown], [30_000, 30_000, true]);
    assert.equal(progress[0].totalKnown, false, "the first row is counted before the reading ends");
    // Halfway, at most a chunk of the file is read but not yet counted: the estimate is close.
    const half = progress[14_999];
    assert.ok(
      half.total > 24_000 && half.total <= 31_500,
      `halfway, an estimate of ${half.total} rows for 30,000`,
    );
  });
  it("progress: the last report has the exact total, however the rows fall into chunks", async () => {
    // About two chunks of the pool's reading (250 rows each), the second with no prompts: errors
    // reported without a counting call, so they could be handed on before the reading ends.
    for (const rows of [499, 500, 501]) {
      const lines = Array.from({ length: rows }, (_, i) => `${i},${i < 250 ? "p" : ""}`);
      const t = setup("in.csv", `id,text\n${lines.join("\n")}\n`, "prompt: { column: text }\n");
      const progress: CountProgress[] = [];
      const result = await countJobTokens(await t.load(), {
        env: t.env,
        registry: t.registry,
        onProgress: (p) => progress.push(p),
      });
      assert.deepEqual([result.prompts, result.errors], [250, rows - 250]);
      const last = progress.at(-1)!;
      assert.deepEqual(
        [last.done, last.total, last.totalKnown],
        [rows, rows, true],
        `${rows} rows`,
      );
      assert.equal(progress.length, rows, "one report a row");
    }
  });
});
