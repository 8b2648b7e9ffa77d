/**
 * Where a job's files are on this machine. A record holds absolute paths (the input, the output,
 * the job file, plugin files) as the machine that submitted it saw them, with `root` (that
 * machine's working directory) and `host` (its name). A team shares records through one store,
 * and each machine has its own checkout: machine B, working in its checkout, finds the files at
 * the same places relative to its working directory. So on another machine, or when the recorded
 * input is gone, every path inside `root` is moved onto this working directory, provided the input
 * is there. The input's fingerprint is still checked before anything is merged: the same place is
 * not the same file.
 * @module
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import type { JobRecord } from "./store.ts";

/** `path` moved from under `from` to under `to`, or undefined when it is not inside `from`. */
function rebase(path: string, from: string, to: string): string | undefined {
  const rel = relative(from, path);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return rel === "" ? to : undefined;
  }
  return join(to, rel);
}

/**
 * The record with its paths on this machine (see the module comment); the record itself when it
 * was written in `cwd`, on this machine with its input in place, or when the input is not under
 * `cwd` either (then messages name the recorded path).
 */
export function localized(record: JobRecord, cwd: string, host: string): JobRecord {
  const root = record.root;
  if (!root || root === cwd) return record;
  if ((record.host === undefined || record.host === host) && existsSync(record.input.path)) {
    return record;
  }
  const move = (path: string) => rebase(path, root, cwd) ?? path;
  const input = move(record.input.path);
  if (input === record.input.path || !existsSync(input)) return record;
  const spec = {
    ...record.spec,
    dataset: { ...record.spec.dataset, path: move(record.spec.dataset.path) },
    ...(record.spec.output?.path
      ? { output: { ...record.spec.output, path: move(record.spec.output.path) } }
      : {}),
    ...(typeof record.spec.schema === "string" ? { schema: move(record.spec.schema) } : {}),
    ...(record.spec.plugins
      ? { plugins: record.spec.plugins.map((p) => (isAbsolute(p) ? move(p) : p)) }
      : {}),
  };
  return {
    ...record,
    root: cwd,
    spec,
    input: { ...record.input, path: input },
    output: move(record.output),
    ...(record.jobFile ? { jobFile: move(record.jobFile) } : {}),
    // The file this job wrote last is on the other machine: any output here is asked about.
    written: undefined,
  };
}
