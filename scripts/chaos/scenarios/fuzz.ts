/**
 * Fuzzed inputs: the job file or the dataset (CSV, JSONL, JSON, gzipped) is damaged at random
 * (characters cut, doubled, swapped for quotes, brackets, NULs or invalid UTF-8, lines cut short)
 * and the job is planned and run offline with echo. Whatever the damage, Loom answers with one
 * line (exit 0, 1 or 2), never a stack trace; it leaves no output unless it succeeded, and an
 * output it writes is complete and in order.
 * @module
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import type { Rng } from "../rng.ts";
import type { Scenario } from "../scenario.ts";
import type { Trial } from "../trial.ts";

/** Damaged inputs tried per trial. */
const ROUNDS = 4;

/** Bytes a damage may insert: the characters parsers trip on. */
const NASTY = ['"', "'", ",", "\n", "\r", "{", "}", "[", "]", ":", "-", "#", "\t", "\0", "\\", "é"];

/** One random damage to `bytes`. */
export function damage(rng: Rng, bytes: Buffer): Buffer {
  const at = rng.int(0, Math.max(0, bytes.length - 1));
  switch (rng.int(0, 5)) {
    case 0: // cut a run of bytes
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + rng.int(1, 12))]);
    case 1: // insert a nasty character
      return Buffer.concat([
        bytes.subarray(0, at),
        Buffer.from(rng.pick(NASTY)),
        bytes.subarray(at),
      ]);
    case 2: // double a run
      return Buffer.concat([bytes.subarray(0, at + rng.int(1, 20)), bytes.subarray(at)]);
    case 3: // truncate
      return bytes.subarray(0, at);
    case 4: // invalid UTF-8
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff, 0xfe]), bytes.subarray(at)]);
    default: // a byte flipped
      return Buffer.from(bytes.map((b, i) => (i === at ? b ^ (1 << rng.int(0, 6)) : b)));
  }
}

/** The dataset in each format, as the default prompts give it. */
function datasetOf(t: Trial, format: string): { name: string; bytes: Buffer } {
  const rows = t.prompts.map((p, i) => ({ id: String(i + 1), prompt: p }));
  if (format === "jsonl") {
    return { name: "in.jsonl", bytes: Buffer.from(rows.map((r) => JSON.stringify(r)).join("\n")) };
  }
  if (format === "json") return { name: "in.json", bytes: Buffer.from(JSON.stringify(rows)) };
  const csv = readFileSync(t.input);
  return format === "csv.gz"
    ? { name: "in.csv.gz", bytes: gzipSync(csv) }
    : { name: "in.csv", bytes: csv };
}

export const fuzzedInputs: Scenario = {
  name: "fuzz",
  about: "a damaged job file or dataset (CSV, gzipped CSV, JSONL, JSON), planned and run",
  variants: ["job-file", "csv", "csv.gz", "jsonl", "json"],
  async run(ctx, variant) {
    const t = await ctx.open({ provider: "echo", mode: "sync" });
    const job = readFileSync(t.job);
    for (let round = 0; round < ROUNDS; round++) {
      rmSync(t.output, { force: true });
      let file = "job.yaml";
      let output = "out.csv";
      if (variant === "job-file") {
        writeFileSync(t.job, damage(ctx.rng, job));
      } else {
        const { name, bytes } = datasetOf(t, variant);
        // Damage a gzipped file inside (a broken stream is tested by damaging the gzip itself).
        const damaged = variant === "csv.gz" && ctx.rng.chance(0.5)
          ? gzipSync(damage(ctx.rng, readFileSync(t.input)))
          : damage(ctx.rng, bytes);
        writeFileSync(join(t.dir, name), damaged);
        t.protect(join(t.dir, name));
        output = `out.${name.replace(/^in\./, "").replace(/\.gz$/, "")}`;
        file = "fuzz.yaml";
        writeFileSync(
          join(t.dir, file),
          `dataset: { path: ${name} }\nprovider: echo\nmodel: echo-1\nmode: sync\noutput: { path: ${output} }\n`,
        );
      }
      const out = join(t.dir, output);
      rmSync(out, { force: true });
      let lastRun = "";
      for (const args of [["plan", file], ["run", file]]) {
        const r = await t.loom(args);
        lastRun = r.stderr;
        t.expect(
          r.code === 0 || r.code === 1 || r.code === 2,
          `loom ${args.join(" ")} exited ${r.code ?? r.signal} on a damaged ${variant}`,
        );
        if (args[0] === "run" && r.code !== 0 && existsSync(out)) {
          t.fail("lost-file", `loom run failed (exit ${r.code}) but left ${output} behind`);
        }
        if (r.code !== 0) {
          t.expect(
            /^loom: /m.test(r.stderr),
            `loom ${args.join(" ")} failed without a loom: line: ${r.stderr.slice(0, 300)}`,
          );
        }
      }
      // A damaged job file may still be valid YAML that names another output; only ours is checked.
      if (variant !== "job-file" && existsSync(out)) checkEchoed(t, out, variant, lastRun);
    }
    writeFileSync(t.job, job);
  },
};

/**
 * An output written from a damaged dataset: every row echoed back its own prompt (echo answers
 * with the prompt), or carries an error; as many rows as the run said it read.
 */
function checkEchoed(t: Trial, path: string, format: string, said: string): void {
  const text = readFileSync(path, "utf8");
  let rows: Record<string, unknown>[];
  try {
    rows = format.startsWith("csv")
      ? parse(text, { columns: true, bom: true }) as Record<string, unknown>[]
      : format === "jsonl"
      ? text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
      : JSON.parse(text);
  } catch (e) {
    t.fail("wrong-row", `the output ${path} does not parse as ${format}: ${(e as Error).message}`);
    return;
  }
  const read = Number(said.match(/loom: (\d+) rows? from /)?.[1] ?? NaN);
  if (Number.isFinite(read) && rows.length !== read) {
    t.fail("lost-row", `${rows.length} rows written, ${read} read`);
  }
  rows.forEach((row, i) => {
    const answered = typeof row.prompt === "string" && row.prompt !== "" &&
      row.llm_response === row.prompt;
    if (!answered && !row.llm_error) {
      t.fail("wrong-row", `row ${i + 1} is neither its echo nor an error: ${JSON.stringify(row)}`);
    }
  });
}
