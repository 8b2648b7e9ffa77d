/**
 * `loom view` fixtures for sync runs and costs: a state store (the SQLite file of a `LOOM_HOME`)
 * holding a recorded sync run and a merged batch job with failed rows, both made by the real core
 * with `priced` (echo reporting a cost) and a price in the job, so that tokens, actual and
 * estimated costs are all there; plus a running run's record and a lost one's, written as a
 * running Loom would have left them.
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startViewer, type Viewer } from "../../cli/commands/view.ts";
import { runJob } from "../commands/run.ts";
import { loadJob } from "../job/load.ts";
import { listRuns, type RunRecord } from "../run/record.ts";
import { pricedRegistry } from "./priced-echo.ts";
import { withHomeStore } from "./state.ts";
import { tempDir } from "./temp.ts";

/** The fixture's store and what is in it. */
export interface RunsFixture {
  readonly dir: string;
  readonly env: Record<string, string>;
  /** The finished sync run (6 rows, 2 failed: `fail_on: boom`), output `sync.csv`. */
  readonly run: RunRecord;
  /** The merged batch job (6 rows, 2 failed), kept in the store. */
  readonly job: string;
  /** A run still running (written a moment ago), and one whose process went silent long ago. */
  readonly running: string;
  readonly lost: string;
  /** Rewrites the running run's record as a later write of it would (`answered` more rows). */
  advance(answered: number): Promise<void>;
  /** Writes a run record into the store, as a Loom running it would. */
  put(record: RunRecord): Promise<void>;
}

const ROWS = ["alpha", "boom bravo", "charlie", "delta", "boom echo", "foxtrot"];

/** Makes the fixture in-process (well under a second). */
export async function runsFixture(): Promise<RunsFixture> {
  const dir = tempDir("loom-view-runs-");
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${ROWS.map((t, i) => `${i + 1},${t}`).join("\n")}\n`,
  );
  const env = { LOOM_HOME: join(dir, "home"), LOOM_HOST_ID: "fixture-host" };
  const job = (mode: string, output: string) =>
    "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: priced\nmodel: echo-1\n" +
    `provider_options: { fail_on: boom }\nmode: ${mode}\noutput: { path: ${output}, with_usage: true }\n` +
    "cost: { max_usd: 10, prices: { input: 1, output: 2 } }\n";
  writeFileSync(join(dir, "sync.yaml"), job("sync", "sync.csv"));
  writeFileSync(join(dir, "batch.yaml"), job("batch", "batch.csv"));
  const run = async (file: string) =>
    runJob(await loadJob({ file: join(dir, file), cwd: dir }), {
      env,
      cwd: dir,
      registry: pricedRegistry(),
      wait: true,
      pollMs: 1,
    });
  await run("sync.yaml");
  const summary = await run("batch.yaml");
  const jobId = summary.job?.id ??
    (await withHomeStore(env.LOOM_HOME, async (s) => (await s.jobs.list())[0].id));
  const [record] = await withHomeStore(env.LOOM_HOME, (s) => listRuns(s.runs!));
  const put = (r: RunRecord) =>
    withHomeStore(env.LOOM_HOME, (s) => s.runs!.put(r.id, JSON.stringify(r)));
  const now = Date.now();
  const running = (answered: number): RunRecord => ({
    ...record,
    id: "run-20261205-00ffee",
    output: join(dir, "running.csv"),
    startedAt: new Date(now - 150_000).toISOString(),
    updatedAt: new Date().toISOString(),
    endedAt: undefined,
    status: "running",
    answered,
    failed: 0,
    cached: 0,
    perMinute: [answered - 1, 1],
  });
  await put(running(2));
  await put({
    ...record,
    id: "run-20261201-0dead0",
    startedAt: new Date(now - 3_600_000).toISOString(),
    updatedAt: new Date(now - 3_000_000).toISOString(),
    endedAt: undefined,
    status: "running",
  });
  return {
    dir,
    env,
    run: record,
    job: jobId,
    running: "run-20261205-00ffee",
    lost: "run-20261201-0dead0",
    advance: (answered) => put(running(answered)),
    put,
  };
}

/** Starts a viewer on the fixture's store; stop it when done. */
export function viewerOnRuns(fixture: RunsFixture): Promise<Viewer> {
  return startViewer({ targets: [], env: fixture.env, cwd: fixture.dir });
}
