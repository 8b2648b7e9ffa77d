/**
 * `loom view` fixtures: a state store holding a merged batch job with failed rows and a pending
 * one still running, made by the real CLI with the offline `echo` provider, and a viewer started
 * on them in this process.
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startViewer, type Viewer } from "../../cli/commands/view.ts";
import { runCli } from "./run-cli.ts";
import { tempDir } from "./temp.ts";

/** Keys given to the runs (by environment and by `--api-key`) that no response may show. */
export const VIEW_SECRETS = {
  env: "sk-view-env-secret-0123456789",
  flag: "sk-view-flag-secret-9876543210",
} as const;

/** A store with two batch jobs, the merged one's output, and where they are. */
export interface ViewFixture {
  readonly dir: string;
  readonly env: Record<string, string>;
  /** Merged, kept (two rows failed: `fail_on: boom`), output `out.csv` with usage columns. */
  readonly merged: string;
  /** Submitted in three batches that stay in progress; no output yet. */
  readonly pending: string;
}

const ROWS = ["alpha", "boom bravo", "charlie", "delta", "boom echo", "foxtrot"];

/** Makes the fixture: two `loom run` and one `loom fetch` (a few seconds). */
export async function viewFixture(): Promise<ViewFixture> {
  const dir = tempDir("loom-view-");
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${ROWS.map((t, i) => `${i + 1},${t}`).join("\n")}\n`,
  );
  const job = (options: string, output: string, shards: number) =>
    "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: echo-1\n" +
    `provider_options: { ${options} }\noutput: { path: ${output}, with_usage: true }\n` +
    `batch: { max_requests: ${Math.ceil(ROWS.length / shards)} }\n`;
  writeFileSync(join(dir, "merged.yaml"), job("fail_on: boom", "out.csv", 1));
  writeFileSync(join(dir, "pending.yaml"), job("batch_polls: 1000", "later.csv", 3));
  const env = { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: VIEW_SECRETS.env };
  const run = async (args: string[]) => {
    const result = await runCli([...args, "--api-key", VIEW_SECRETS.flag], { cwd: dir, env });
    if (result.code !== 0 && !(args[0] === "fetch" && result.code === 1)) {
      throw new Error(`loom ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    }
    return result;
  };
  const idOf = (stdout: string) => /submitted job (\S+):/.exec(stdout)![1];
  const merged = idOf((await run(["run", "merged.yaml"])).stdout);
  await run(["fetch", "--id", merged]);
  const pending = idOf((await run(["run", "pending.yaml"])).stdout);
  return { dir, env, merged, pending };
}

/** Starts a viewer on the fixture's store showing `targets`; stop it when done. */
export function viewerOn(fixture: ViewFixture, targets: string[] = []): Promise<Viewer> {
  return startViewer({ targets, env: fixture.env, cwd: fixture.dir });
}

/** The viewer's address and token, and a fetch that sends the token. */
export function client(viewer: Viewer) {
  const url = new URL(viewer.url);
  const token = url.searchParams.get("token")!;
  const base = `http://${url.host}`;
  return {
    base,
    token,
    get: (path: string, headers: Record<string, string> = {}) =>
      fetch(base + path, { headers: { "x-loom-token": token, ...headers } }),
    // deno-lint-ignore no-explicit-any
    json: async (path: string): Promise<{ status: number; body: any }> => {
      const response = await fetch(base + path, { headers: { "x-loom-token": token } });
      return { status: response.status, body: await response.json() };
    },
  };
}
