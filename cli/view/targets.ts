/**
 * What `loom view`'s routes share: the answer to a client's mistake, the query of a rows page, and
 * the output a route names (a file by its place on the command line, a job by its id) with its
 * row index.
 * @module
 */
import { stat } from "node:fs/promises";
import type { Context } from "hono";
import { findJob } from "../../core/batch/jobs.ts";
import type { JobRecord } from "../../core/batch/store.ts";
import { loadRun } from "../../core/run/record.ts";
import { LoomUsageError } from "../../core/base/errors.ts";
import { displayPath } from "../../core/base/paths.ts";
import type { FormatV1 } from "../../core/spec/format.ts";
import type { ViewSources } from "./app.ts";
import type { RowIndex, RowQuery } from "./row-index.ts";

/** A client's mistake or a missing thing, answered as JSON `{ error }`. */
export class Answer extends Error {
  readonly status: 400 | 404 | 409;
  constructor(status: 400 | 404 | 409, message: string) {
    super(message);
    this.status = status;
  }
}

export function intParam(c: Context, name: string, fallback: number, max: number): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new Answer(
      400,
      `${name} must be a whole number from 0 to ${max}, not ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

export function queryOf(c: Context): RowQuery {
  const sort = c.req.query("sort") || "row";
  return {
    offset: intParam(c, "offset", 0, Number.MAX_SAFE_INTEGER),
    limit: Math.max(1, intParam(c, "limit", 50, 500)),
    sort,
    descending: c.req.query("order") === "desc",
    failed: c.req.query("failed") === "1",
    finish: c.req.query("finish"),
    text: c.req.query("q") || undefined,
    kind: c.req.query("kind") || undefined,
  };
}

/** The output a route names. */
export interface Target {
  readonly path: string;
  readonly format: FormatV1;
  /** How the page names it. */
  readonly title: string;
  /** The batch job whose output it is, when the route names a job. */
  readonly job?: JobRecord;
}

/**
 * An output as a route names it: a file by its place on the command line, a job by its id, or a
 * sync run by its id.
 */
export type TargetRef = { readonly file: string } | { readonly id: string } | {
  readonly run: string;
};

/** The output named by a route's `:file`, `:id` or `:run` parameter. */
export function refOf(c: Context): TargetRef {
  const file = c.req.param("file");
  const run = c.req.param("run");
  return file !== undefined ? { file } : run !== undefined ? { run } : {
    id: c.req.param("id") ?? "",
  };
}

/** The job `id` names (an id, a unique prefix, a batch id), or a 404 saying there is none. */
export async function jobOf(sources: ViewSources, id: string): Promise<JobRecord> {
  try {
    return await findJob(sources.jobs, id);
  } catch (error) {
    if (error instanceof LoomUsageError) throw new Answer(404, error.message);
    throw error;
  }
}

/** The output `ref` names, with its format. */
export async function target(sources: ViewSources, ref: TargetRef): Promise<Target> {
  if ("file" in ref) {
    const { file } = ref;
    const f = /^\d+$/.test(file) ? sources.files[Number(file)] : undefined;
    if (!f) throw new Answer(404, `no output file ${file} was given to loom view`);
    return { ...f, title: displayPath(f.path, sources.cwd) };
  }
  if ("run" in ref) return await runTarget(sources, ref.run);
  const record = await jobOf(sources, ref.id);
  if (!(await stat(record.output).catch(() => undefined))?.isFile()) {
    throw new Answer(
      409,
      `job ${record.id} has no output yet (${
        displayPath(record.output, sources.cwd)
      }): loom fetch writes it once its batches end`,
    );
  }
  const name = record.spec.dataset.format;
  const format = name === undefined
    ? (await sources.registry.formatForPath(record.output, sources.context)).format
    : await sources.registry.create("format", name, {}, sources.context);
  return {
    path: record.output,
    format,
    title: `job ${record.id}: ${displayPath(record.output, sources.cwd)}`,
    job: record,
  };
}

/** The output of sync run `id`, in the format it was written with. */
async function runTarget(sources: ViewSources, id: string): Promise<Target> {
  const { storage, location } = sources.jobs;
  const record = storage.runs && await loadRun(storage.runs, id);
  if (!record) throw new Answer(404, `no sync run ${JSON.stringify(id)} in ${location}`);
  const output = displayPath(record.output, sources.cwd);
  if (!(await stat(record.output).catch(() => undefined))?.isFile()) {
    throw new Answer(
      409,
      record.status === "running"
        ? `run ${id} has no output yet (${output}): it is written when the run ends`
        : `run ${id} left no output at ${output} (${record.status}, or moved since)`,
    );
  }
  // A format plugin the viewer did not load (a job's own): the one the file's name suggests.
  const format = await sources.registry.create("format", record.format, {}, sources.context)
    .catch(async () =>
      (await sources.registry.formatForPath(record.output, sources.context)).format
    );
  return { path: record.output, format, title: `run ${id}: ${output}` };
}

/** The output a route names and its index, refused when the file went away. */
export async function indexedTarget(
  sources: ViewSources,
  ref: TargetRef,
): Promise<Target & { index: RowIndex }> {
  const t = await target(sources, ref);
  if (!(await stat(t.path).catch(() => undefined))) {
    throw new Answer(
      404,
      `${
        displayPath(t.path, sources.cwd)
      } is gone: it was moved or removed after loom view started`,
    );
  }
  return { ...t, index: await sources.indexes.of(t.path, t.format) };
}
