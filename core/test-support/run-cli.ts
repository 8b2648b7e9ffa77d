/**
 * Runs Loom's CLI as a real child process (from source under Deno, from dist/ under Node), for
 * end-to-end tests.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { cliCommand } from "../base/runtime.ts";

/** What a finished CLI run printed and returned. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link spawnCli}. */
export interface CliOptions {
  cwd?: string;
  /** Added to a clean environment (PATH and HOME kept; never the caller's API keys). */
  env?: Record<string, string>;
}

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const keep = ["PATH", "HOME", "TMPDIR", "DENO_DIR", "SystemRoot"];
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return { ...env, ...extra };
}

/** Starts the CLI; returns the child and a promise of its result. */
export function spawnCli(
  args: string[],
  options: CliOptions = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const { command, args: prefix } = cliCommand();
  const child = spawn(command, [...prefix, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs the CLI to completion. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, options).done;
}
