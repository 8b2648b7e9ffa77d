/**
 * `loom view [JOB_ID | RUN_ID | OUTPUT_FILE …]`: a local web viewer of the state store's batch
 * jobs, sync runs and output files' rows, on 127.0.0.1 with a per-start token (see cli/view/). It
 * runs until Ctrl-C.
 * @module
 */
import { spawn } from "node:child_process";
import { open, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import process from "node:process";
import type { Command } from "commander";
import { findJob } from "../../core/batch/jobs.ts";
import { JobStore } from "../../core/batch/store.ts";
import { errorMessage, LoomError, LoomUsageError } from "../../core/base/errors.ts";
import { displayPath } from "../../core/base/paths.ts";
import { loomHome } from "../../core/base/runtime.ts";
import { findRun } from "../../core/run/record.ts";
import { Registry } from "../../core/plugins/registry.ts";
import type { PluginContext } from "../../core/plugins/plugin.ts";
import type { StorageV2 } from "../../core/spec/storage.ts";
import { maskUrl, openStore, storeChoice } from "../../core/state/open.ts";
import { createApp, loadAssets, type ViewedFile } from "../view/app.ts";
import { newToken } from "../view/guard.ts";
import { listen, LOOPBACK } from "../view/listen.ts";
import { RowIndexes } from "../view/row-index.ts";
import { makeSpillFolder } from "../view/spill.ts";

/** Flags of `loom view`. */
interface ViewFlags {
  port?: string;
  open?: boolean;
  actions?: boolean;
  apiKey?: string;
}

/** A running viewer. */
export interface Viewer {
  /** The URL to open, token included. */
  readonly url: string;
  readonly port: number;
  /** Stops the server and releases the store and the indexes' files. */
  stop(): Promise<void>;
}

/** Options of {@link startViewer}. */
export interface ViewerOptions {
  /** Job ids, sync run ids and output files, as given on the command line. */
  readonly targets: readonly string[];
  /** 0 (the default): a free port. */
  readonly port?: number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** `--actions`: the jobs page offers Fetch, Cancel and Retry (else the viewer only reads). */
  readonly actions?: boolean;
  /** `--api-key`, for the actions (default: the provider's environment variable). */
  readonly apiKey?: string;
}

/** `--port`'s value as a port number. */
export function parsePort(value: string | undefined): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65535) {
    throw new LoomUsageError(
      `--port takes a port number from 1 to 65535 (0 or none: a free one), not ${
        JSON.stringify(value)
      }`,
    );
  }
  return port;
}

/**
 * Opens the store; failing to is the user's to fix (a URL, a server that is down), so it exits 2
 * with the store's own message, which names it and says what to check.
 */
async function openViewStore(registry: Registry, context: PluginContext): Promise<StorageV2> {
  try {
    return await openStore(registry, context);
  } catch (error) {
    if (error instanceof LoomUsageError) throw error;
    const where = maskUrl(storeChoice(context.env).url ?? join(context.home, "state.db"));
    throw new LoomUsageError(
      LoomError.isInstance(error)
        ? error.message
        : `cannot open the state store ${where}: ${
          errorMessage(error)
        }; check --state or LOOM_STATE`,
      { cause: error },
    );
  }
}

/** An output file named on the command line, checked readable, with the format its name says. */
async function outputFile(
  path: string,
  cwd: string,
  registry: Registry,
  context: PluginContext,
): Promise<ViewedFile> {
  const shown = displayPath(path, cwd);
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) throw new LoomUsageError(`${shown} is a directory, not an output file`);
  try {
    await (await open(path)).close();
  } catch (error) {
    throw new LoomUsageError(
      `cannot read the output file ${shown}: ${errorMessage(error)}; check its permissions`,
    );
  }
  try {
    return { path, format: (await registry.formatForPath(path, context)).format };
  } catch (error) {
    if (!(error instanceof LoomUsageError)) throw error;
    throw new LoomUsageError(
      `${shown}: loom view cannot tell its format from its name: it reads ${
        registry.names("format").join(", ")
      } files by their extension (.gz too)`,
      { cause: error },
    );
  }
}

/**
 * Sorts the targets into output files (what exists on disk, or looks like a path), sync run ids
 * (`run-…`) and job ids, the ids checked against the store.
 */
async function resolveTargets(
  targets: readonly string[],
  jobs: JobStore,
  registry: Registry,
  context: PluginContext,
  cwd: string,
): Promise<{ files: ViewedFile[]; pages: string[] }> {
  const files: ViewedFile[] = [];
  /** Each id's page: its rows, or what it has before there are any. */
  const pages: string[] = [];
  const exists = async (path: string) => Boolean(await stat(path).catch(() => undefined));
  for (const target of targets) {
    const path = resolve(cwd, target);
    if (await exists(path)) {
      files.push(await outputFile(path, cwd, registry, context));
    } else if (/[/\\.]/.test(target)) {
      throw new LoomUsageError(
        `output file not found: ${target}; give the path of a file Loom wrote (CSV, JSON or JSONL, .gz too), a job id from loom list or a run id from loom list --runs`,
      );
    } else if (target.startsWith("run-")) {
      const run = await findRun(jobs.storage.runs, target);
      pages.push(`#/runs/${run.id}${(await exists(run.output)) ? "" : "/about"}`);
    } else {
      const job = await findJob(jobs, target);
      pages.push(`#/jobs/${job.id}${(await exists(job.output)) ? "" : "/input"}`);
    }
  }
  return { files, pages };
}

/** Starts a viewer; the caller stops it. */
export async function startViewer(options: ViewerOptions): Promise<Viewer> {
  const env = { ...(options.env ?? process.env) };
  const cwd = options.cwd ?? process.cwd();
  const registry = new Registry();
  const context: PluginContext = { env, home: loomHome(env) };
  const storage = await openViewStore(registry, context);
  const cleanups: (() => Promise<unknown>)[] = [() => storage.close()];
  const cleanUp = async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch(() => {});
  };
  try {
    const jobs = new JobStore(storage, env, cwd);
    const { files, pages } = await resolveTargets(options.targets, jobs, registry, context, cwd);
    const spill = await makeSpillFolder();
    cleanups.push(() => rm(spill, { recursive: true, force: true }));
    const indexes = new RowIndexes(spill);
    cleanups.push(() => indexes.close());
    const token = newToken();
    let port = 0;
    const actions = options.actions ? { apiKey: options.apiKey, env, store: storage } : undefined;
    const app = createApp(
      { jobs, files, indexes, registry, context, cwd, actions },
      await loadAssets(),
      token,
      () => port,
    );
    const server = await listen(app.fetch, options.port ?? 0);
    port = server.port;
    cleanups.push(() => server.close());
    // One target: the URL opens on its rows (a job not merged yet: on its input rows; a run with
    // no output: on its page). More: on the jobs page, which offers to compare them.
    const page = files.length + pages.length !== 1 ? "" : files.length ? "#/files/0" : pages[0];
    return { url: `http://${LOOPBACK}:${port}/?token=${token}${page}`, port, stop: cleanUp };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** Opens `url` in the desktop's browser; a failure is only told. */
function openBrowser(url: string): void {
  const [command, ...args] = process.platform === "darwin"
    ? ["open", url]
    : process.platform === "win32"
    ? ["cmd", "/c", "start", "", url]
    : ["xdg-open", url];
  const child = spawn(command, args, { stdio: "ignore", detached: true });
  child.on("error", (error) => {
    process.stderr.write(`loom: could not open a browser (${error.message}); open the URL above\n`);
  });
  child.unref();
}

/** Registers `view` on the program. */
export function registerView(program: Command): void {
  program
    .command("view")
    .description(
      "a local web viewer of batch jobs, sync runs and output rows (127.0.0.1 only, until Ctrl-C)",
    )
    .argument(
      "[targets...]",
      "job ids, sync run ids (run-…) and output files (CSV, JSON, JSONL, .gz too) to show",
    )
    .option("--port <port>", "the port to listen on (default: a free one)")
    .option("--open", "open the page in the desktop's browser")
    .option(
      "--actions",
      "offer Fetch, Cancel and Retry on the jobs page, each confirmed first (default: read-only)",
    )
    .option(
      "--api-key <key>",
      "API key for the actions (default: the provider's environment variable)",
    )
    .action(async (targets: string[], flags: ViewFlags) => {
      if (flags.apiKey !== undefined && !flags.actions) {
        throw new LoomUsageError(
          "--api-key is for --actions: a read-only viewer sends nothing to a provider",
        );
      }
      const viewer = await startViewer({
        targets,
        port: parsePort(flags.port),
        actions: flags.actions,
        apiKey: flags.apiKey,
      });
      // Listened for before the URL is out: whoever reads it may stop the viewer at once.
      const stopped = new Promise<string>((resolve) => {
        process.once("SIGINT", () => resolve("SIGINT"));
        process.once("SIGTERM", () => resolve("SIGTERM"));
      });
      process.stdout.write(`${viewer.url}\n`);
      process.stderr.write(
        `loom: viewing on ${LOOPBACK}:${viewer.port} (${
          flags.actions ? "with actions: Fetch, Cancel and Retry, each confirmed" : "read-only"
        }; the token in the URL is new at every start); Ctrl-C stops it\n`,
      );
      if (flags.open) openBrowser(viewer.url);
      const signal = await stopped;
      await viewer.stop();
      process.stderr.write(`loom: viewer stopped (${signal})\n`);
    });
}
