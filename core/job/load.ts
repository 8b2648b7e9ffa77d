/**
 * Loading a job: read the YAML job file (if any), lay the command-line overrides on top, validate
 * the lot against {@link JobSchema} and report every problem at once with its `file:line:column`
 * (or the `--flag` that supplied the value). Paths in the job are made absolute.
 * @module
 */
import { readFile } from "node:fs/promises";
import * as nodePath from "node:path";
import * as v from "valibot";
import { type JobIssue, LoomJobError, LoomUsageError } from "../base/errors.ts";
import { describeIssues, dottedPath, type Problem } from "./issues.ts";
import { isPathReference } from "../plugins/loader.ts";
import { JobSchema, type JobSpec } from "./schema.ts";
import { type KeyPath, parseSource, type Pos, type YamlSource } from "./source.ts";

/** A value given on the command line that overrides (or stands in for) a job field. */
export interface JobOverride {
  /** Key path in the job, e.g. `["sync", "workers"]`. */
  path: readonly string[];
  /** The value; `undefined` means the flag was not given and the override is ignored. */
  value: unknown;
  /** The flag, for messages, e.g. `--workers`. */
  flag: string;
  /**
   * Keys the flag replaces besides its own, removed from the job first: `--col` sets
   * `prompt.column` and so clears `prompt.template`.
   */
  clears?: readonly (readonly string[])[];
}

/** A validated job and where its parts came from. */
export interface LoadedJob {
  /**
   * The validated job; `dataset.path`, `output.path`, a `schema` file and plugin paths are
   * absolute, but an `output.path` of `-` (standard output, which the CLI stands in for) is kept.
   */
  spec: JobSpec;
  /** Absolute path of the job file, when there is one. */
  file?: string;
  /** Directory relative job paths were resolved against (the job file's, or cwd without one). */
  dir: string;
  /** `file:line:column` of the value at `path`, the `--flag` that set it, or `"job"` if unknown. */
  where(path: readonly string[]): string;
}

/** The `output.path` (and `--output`) that means standard output. */
export const STDOUT_PATH = "-";

/** The `loom run` flags that set job fields, by dotted key path (names the flag a missing key needs). */
export const JOB_FLAGS: Readonly<Record<string, string>> = {
  "dataset.path": "--file",
  provider: "--provider",
  model: "--model",
  "prompt.column": "--col",
  "output.path": "--output",
  mode: "--sync/--batch",
  "sync.workers": "--workers",
  "sync.cache": "--no-cache",
  "sync.rpm": "--rpm",
  "sync.tpm": "--tpm",
  "output.with_meta": "--with-meta",
  "output.with_usage": "--with-usage",
  "provider_options.base_url": "--base-url",
  schema: "--schema",
};

/**
 * Loads and validates a job from a YAML file and/or command-line overrides. Paths in the file are
 * relative to the file's directory; paths given by overrides are relative to `cwd`.
 * @throws LoomUsageError when the job file cannot be read; LoomJobError listing every problem.
 */
export async function loadJob(
  opts: { file?: string; overrides?: readonly JobOverride[]; cwd: string },
): Promise<LoadedJob> {
  const cwd = nodePath.resolve(opts.cwd);
  const overrides = (opts.overrides ?? []).filter((o) => o.value !== undefined);
  const file = opts.file === undefined ? undefined : nodePath.resolve(cwd, opts.file);
  const shown = file === undefined ? "" : shownPath(cwd, file);
  const at = (pos: Pos) => located(shown, pos);
  const source = file === undefined ? undefined : await readSource(file, shown);

  // A copy: with YAML aliases two keys may share one object, and an override must touch one.
  const input = source ? structuredClone(source.value) as Record<string, unknown> : {};
  for (const o of overrides) {
    for (const path of o.clears ?? []) deleteIn(input, path);
    setIn(input, o.path, o.value);
  }
  const overrideAt = (path: KeyPath) => findOverride(overrides, path);

  const result = v.safeParse(JobSchema, input, { abortEarly: false });
  if (!result.success) {
    const placed = describeIssues(result.issues, JobSchema, input)
      .map((p) => place(p, source, overrideAt))
      .sort(byPosition);
    const issues = placed.map(({ pos, issue }) => (pos ? { ...issue, where: at(pos) } : issue));
    throw new LoomJobError(issues, file ? `invalid job file ${shown}` : "invalid job");
  }

  const dir = file === undefined ? cwd : nodePath.dirname(file);
  // Values from the file are relative to the file; values from flags to where the user typed them.
  const resolve = (path: KeyPath, p: string) => nodePath.resolve(overrideAt(path) ? cwd : dir, p);
  const spec = result.output;
  spec.dataset.path = resolve(["dataset", "path"], spec.dataset.path);
  if (spec.output?.path !== undefined && spec.output.path !== STDOUT_PATH) {
    spec.output.path = resolve(["output", "path"], spec.output.path);
  }
  if (typeof spec.schema === "string") spec.schema = resolve(["schema"], spec.schema);
  if (spec.plugins) {
    spec.plugins = spec.plugins.map((
      p,
      i,
    ) => (isPathReference(p) && !p.startsWith("file:") ? resolve(["plugins", i], p) : p));
  }
  const where = (path: readonly string[]): string => {
    const flag = overrideAt(path)?.flag;
    const pos = flag ? undefined : source?.valuePos(path);
    return flag ?? (pos ? at(pos) : "job");
  };
  return { spec, file, dir, where };
}

/** Reads and parses a job file; throws unless it is well-formed YAML with a mapping on top. */
async function readSource(file: string, shown: string): Promise<YamlSource> {
  const source = parseSource(await readJobFile(file));
  const at = (pos: Pos) => located(shown, pos);
  const fail = (pos: Pos, message: string, header: string): never => {
    throw new LoomJobError([{ where: at(pos), path: "", message }], `${header} ${shown}`);
  };
  if (source.issues.length > 0) {
    const issues = source.issues.map((i) => ({
      where: at(i.pos),
      path: dottedPath(i.path),
      message: i.message,
    }));
    throw new LoomJobError(issues, `invalid YAML in job file ${shown}`);
  }
  const top = source.value;
  if (top === undefined || top === null) {
    const message = "the job file is empty; it needs at least dataset:, provider: and model:";
    fail({ line: 1, col: 1 }, message, "invalid job file");
  }
  if (!isRecord(top)) {
    const got = Array.isArray(top) ? "a list" : `${typeof top} ${JSON.stringify(top)}`;
    const message = `the job file must be a mapping (dataset:, provider:, model:, ...), got ${got}`;
    fail(source.valuePos([]) ?? { line: 1, col: 1 }, message, "invalid job file");
  }
  return source;
}

function located(shown: string, pos: Pos): string {
  return `${shown}:${pos.line}:${pos.col}`;
}

/** The override that set `path` or one of its parents (the most specific one). */
function findOverride(overrides: readonly JobOverride[], path: KeyPath): JobOverride | undefined {
  const covers = (o: JobOverride) =>
    o.path.length <= path.length && o.path.every((key, i) => String(path[i]) === key);
  return overrides.filter(covers).sort((a, b) => b.path.length - a.path.length)[0];
}

/** File problems first, in file order; then the flags', in the order found. */
function byPosition(a: { pos?: Pos }, b: { pos?: Pos }): number {
  if (a.pos && b.pos) return a.pos.line - b.pos.line || a.pos.col - b.pos.col;
  return a.pos ? -1 : b.pos ? 1 : 0;
}

/** Where a problem is reported: a file position, or a flag / "job" already in `issue.where`. */
function place(
  problem: Problem,
  source: YamlSource | undefined,
  overrideAt: (path: KeyPath) => JobOverride | undefined,
): { pos?: Pos; issue: JobIssue } {
  const { kind, path, message } = problem;
  const issue = (where: string, msg = message): JobIssue => ({
    where,
    path: dottedPath(path),
    message: msg,
  });
  if (kind === "missing-key") {
    const parent = path.slice(0, -1);
    // The top level starts at 1:1 even after leading comments; a nested key at its parent's value.
    const pos = parent.length === 0 ? { line: 1, col: 1 } : source?.valuePos(parent);
    if (source && pos && !overrideAt(parent)) return { pos, issue: issue("") };
    const flag = flagFor(path);
    if (flag) {
      return { issue: issue(flag, `required (pass ${flag}${source ? "" : " or use a job file"})`) };
    }
    return { issue: issue(overrideAt(parent)?.flag ?? "job") };
  }
  const flag = overrideAt(path)?.flag;
  if (flag) return { issue: issue(flag) };
  let pos = kind === "unknown-key" ? source?.keyPos(path) : source?.valuePos(path);
  // Not in the file as such (e.g. a key inside a complex key): point at the closest parent.
  for (let n = path.length - 1; !pos && source && n > 0; n--) {
    pos = source.valuePos(path.slice(0, n));
  }
  if (source) return { pos: pos ?? { line: 1, col: 1 }, issue: issue("") };
  return { issue: issue("job") };
}

/** The flag that sets `path`, or the first flag setting something inside it (`dataset` → `--file`). */
function flagFor(path: KeyPath): string | undefined {
  const dotted = path.join(".");
  const key = Object.keys(JOB_FLAGS).find((k) => k === dotted || k.startsWith(`${dotted}.`));
  return key === undefined ? undefined : JOB_FLAGS[key];
}

async function readJobFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") {
      throw new LoomUsageError(`job file not found: ${file}`, { cause: error });
    }
    if (code === "EISDIR") {
      throw new LoomUsageError(`job file is a directory: ${file}`, { cause: error });
    }
    throw new LoomUsageError(`cannot read job file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The file as the user would type it: relative to cwd when inside it, else absolute. */
function shownPath(cwd: string, file: string): string {
  const rel = nodePath.relative(cwd, file);
  const outside = rel === ".." || rel.startsWith(`..${nodePath.sep}`) || nodePath.isAbsolute(rel);
  return rel && !outside ? rel : file;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deleteIn(target: Record<string, unknown>, path: readonly string[]): void {
  let node: unknown = target;
  for (const key of path.slice(0, -1)) {
    if (!isRecord(node)) return;
    node = node[key];
  }
  if (isRecord(node)) delete node[path[path.length - 1]];
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  if (path.length === 0) throw new TypeError("a job override needs a key path");
  let node = target;
  for (const key of path.slice(0, -1)) {
    // The flag wins over whatever the file had there, even a non-mapping.
    if (!isRecord(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}
