/**
 * `-o -` (or `output: { path: "-" }` in a job file): the output goes to standard output. The run writes it as it writes any output (atomic,
 * in the input's format) to a file in a private temporary folder, which is copied to stdout once
 * complete and then removed; so stdout gets the whole output or nothing, and progress and
 * messages stay on stderr.
 * @module
 */
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import process from "node:process";
import { once } from "node:events";
import { LoomUsageError } from "../core/base/errors.ts";
import { type LoadedJob, STDOUT_PATH } from "../core/job/load.ts";

/** The `--output` (and `output.path`) value that means standard output. */
export const STDOUT = STDOUT_PATH;

/**
 * How a job asks for standard output, as messages name it: `-o -`, `output.path "-"` from its
 * file, or undefined when it writes a file.
 */
export function stdoutRequest(job: LoadedJob): string | undefined {
  if (job.spec.output?.path !== STDOUT) return undefined;
  return job.where(["output", "path"]) === "--output" ? "-o -" : `output.path "-"`;
}

/** Refuses standard output where it cannot work: a batch job is merged later, into a file. */
export function checkStdoutMode(mode: "sync" | "batch" | undefined, how = "-o -"): void {
  if ((mode ?? "batch") !== "sync") {
    throw new LoomUsageError(
      `${how} (standard output) works in sync mode only: a batch job is merged later, into a file; add --sync or give -o FILE`,
    );
  }
}

/** A private file standing in for standard output. */
export interface StdoutOutput {
  /** Where the run writes its output. */
  readonly path: string;
  /** Copies the written output to stdout. */
  copy(): Promise<void>;
  /** Removes the temporary folder. */
  dispose(): Promise<void>;
}

/** A temporary output file with the input's extension (so the output is in the input's format). */
export async function stdoutOutput(inputPath: string): Promise<StdoutOutput> {
  const dir = await mkdtemp(join(tmpdir(), "loom-stdout-"));
  const path = join(dir, `stdout${extname(inputPath.toLowerCase().replace(/\.gz$/, ""))}`);
  return {
    path,
    async copy() {
      try {
        for await (const chunk of createReadStream(path)) {
          if (process.stdout.destroyed) return;
          if (!process.stdout.write(chunk)) await once(process.stdout, "drain");
        }
      } catch (error) {
        // A reader that stopped early (`loom … -o - | head`) is no failure of the run.
        if ((error as NodeJS.ErrnoException).code !== "EPIPE") throw error;
      }
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
