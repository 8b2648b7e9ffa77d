/**
 * `loom view` compare fixtures: one dataset run twice through the offline `echo` provider by the
 * real CLI, A as a merged batch job and B as a sync run with another prompt and another `fail_on`,
 * so that some answers are the same, some differ and some rows fail on one side or both.
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { listRuns } from "../run/record.ts";
import { runCli } from "./run-cli.ts";
import { withHomeStore } from "./state.ts";
import { tempDir } from "./temp.ts";

/** The dataset: `hint` is only in B's prompt, `boom` fails A's rows and `bang` B's. */
export const COMPARE_ROWS = [
  ["alpha", ""],
  ["boom bravo", ""],
  ["charlie", " quickly"],
  ["delta", ""],
  ["echo bang", ""],
  ["boom bang", ""],
  ["foxtrot", " and more words"],
  ["golf", ""],
] as const;

/** Where the two outputs are. */
export interface CompareFixture {
  readonly dir: string;
  readonly env: Record<string, string>;
  /** A's batch job (merged); its output is `a.csv`. */
  readonly job: string;
  /** B's sync run, as the state store recorded it; its output is `b.csv`. */
  readonly run: string;
}

/** Makes the fixture: a batch `loom run` and `loom fetch` for A, a sync `loom run` for B. */
export async function compareFixture(): Promise<CompareFixture> {
  const dir = tempDir("loom-compare-");
  writeFileSync(
    join(dir, "in.csv"),
    `id,text,hint\n${COMPARE_ROWS.map(([t, h], i) => `${i + 1},${t},${h}`).join("\n")}\n`,
  );
  const job = (prompt: string, failOn: string, output: string) =>
    `dataset: { path: in.csv }\nprompt: ${prompt}\nprovider: echo\nmodel: echo-1\n` +
    `provider_options: { fail_on: ${failOn} }\noutput: { path: ${output}, with_usage: true }\n`;
  writeFileSync(join(dir, "a.yaml"), job("{ column: text }", "boom", "a.csv"));
  writeFileSync(join(dir, "b.yaml"), job('{ template: "{{text}}{{hint}}" }', "bang", "b.csv"));
  const env = { LOOM_HOME: join(dir, "home") };
  const run = async (args: string[]) => {
    const result = await runCli(args, { cwd: dir, env });
    if (result.code !== 0 && result.code !== 1) {
      throw new Error(`loom ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    }
    return result;
  };
  const id = /submitted job (\S+):/.exec((await run(["run", "a.yaml"])).stdout)![1];
  await run(["fetch", "--id", id]);
  await run(["run", "b.yaml", "--sync"]);
  const [b] = await withHomeStore(env.LOOM_HOME, (store) => listRuns(store.runs!));
  return { dir, env, job: id, run: b.id };
}
