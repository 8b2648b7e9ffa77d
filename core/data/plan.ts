/**
 * Planning: everything about a job that can be checked before any work starts. The dataset is
 * read once in full (streaming) to count its rows and to prove that every column the prompt
 * names exists, so a typo fails in a second rather than at row 900,000 of a paid run.
 * @module
 */
import { basename, extname, resolve } from "node:path";
import { assertDatasetFile, type ByteTap, openDataset } from "./dataset.ts";
import { LoomJobError, LoomUsageError } from "../base/errors.ts";
import { type LoadedJob, STDOUT_PATH } from "../job/load.ts";
import { checkOutputPath, defaultOutputPath, sameFile } from "./output.ts";
import { displayPath } from "../base/paths.ts";
import type { PluginContext } from "../plugins/plugin.ts";
import type { Registry } from "../plugins/registry.ts";
import { DEFAULT_PROMPT_COLUMN, promptColumns } from "./request.ts";
import type { DatasetLayout, DatasetReader, DatasetRow, FormatV1 } from "../spec/format.ts";
import { rowChunksOf } from "./row-chunks.ts";

/** Column Loom adds with the answer. */
export const RESPONSE_COLUMN = "llm_response";
/** Column Loom adds with a row's error (empty when the row succeeded). */
export const ERROR_COLUMN = "llm_error";
/** Columns `with_usage` adds. */
export const USAGE_COLUMNS = [
  "llm_finish_reason",
  "llm_input_tokens",
  "llm_output_tokens",
  "llm_reasoning_tokens",
  "llm_cost",
] as const;
/** Columns `with_meta` adds. */
export const META_COLUMNS = ["llm_provider", "llm_model"] as const;

/** A checked job, ready to execute. */
export interface Plan {
  readonly input: string;
  readonly output: string;
  readonly format: FormatV1;
  readonly formatName: string;
  readonly layout: DatasetLayout;
  /** Rows in the input. */
  readonly rows: number;
  /** Every column seen in the input, in first-seen order. */
  readonly columns: readonly string[];
  /** The columns Loom adds, in output order. */
  readonly added: readonly string[];
  /**
   * The answer schema's fields that get columns of their own (a structured answer in a flat
   * format such as CSV); empty otherwise.
   */
  readonly fieldColumns: readonly string[];
}

/** What planning needs besides the job. */
export interface PlanOptions {
  /** Aborting stops the reading pass. */
  readonly signal?: AbortSignal;
  /** The job's answer schema, if it has one: it decides the added columns. */
  readonly answerFields?: readonly string[];
  /** Check the output path (default true); off for work that writes none (`loom tokens`). */
  readonly checkOutput?: boolean;
  /**
   * Sees every row of the planning pass, so that work needing each row (an estimate) is done in
   * that one pass instead of a second reading. It runs before the columns are checked, so its
   * result is only good once `planJob` has returned.
   */
  readonly onRow?: (row: DatasetRow) => void;
  /**
   * The dataset's row count, known already: a batch job's input at its merge, which is checked
   * against the job's fingerprint as it is read. The dataset is then only opened for its layout,
   * not read through, and its columns (checked when the job was planned) are not checked again.
   */
  readonly knownRows?: number;
  /** Sees the input file's bytes as the planning pass reads them (to fingerprint it in that pass). */
  readonly tap?: ByteTap;
}

/** Picks the job's format: `dataset.format` when given, else the input's extension. */
async function resolveFormat(job: LoadedJob, registry: Registry, context: PluginContext) {
  const name = job.spec.dataset.format;
  if (name === undefined) return registry.formatForPath(job.spec.dataset.path, context);
  return { name, format: await registry.create("format", name, {}, context) };
}

/** The input's extension without `.gz` (`data.csv.gz` → `.csv`). */
function inputExtension(path: string): string {
  return extname(path.toLowerCase().replace(/\.gz$/, ""));
}

/**
 * The output path, checked before any work: never the input, never compressed, in the input's
 * format, and somewhere a file can be written.
 */
async function resolveOutput(job: LoadedJob, format: FormatV1): Promise<string> {
  const { dataset, provider, model, output } = job.spec;
  const inputExt = inputExtension(dataset.path);
  // A `.txt` read with `format: csv` gets a `.csv` output by default.
  const defaultExt = format.extensions.includes(inputExt) ? undefined : format.extensions[0];
  const given = output?.path;
  const path = given ?? defaultOutputPath(dataset.path, provider, model, defaultExt);
  const fail = (message: string): never => {
    if (given !== undefined) {
      throw new LoomJobError([{
        where: job.where(["output", "path"]),
        path: "output.path",
        message,
      }]);
    }
    throw new LoomUsageError(
      `${
        displayPath(path)
      }: ${message} (this is the default output path; choose one with --output or output.path)`,
    );
  };
  // The CLI writes standard output through a file of its own (cli/stdout-output.ts).
  if (given === STDOUT_PATH) {
    fail("standard output (-) is written by the loom CLI only; give a file");
  }
  // Compared as files (device and inode), so a symbolic or hard link to the input is caught too.
  if (resolve(path) === resolve(dataset.path) || (await sameFile(path, dataset.path))) {
    fail("the output would overwrite the input; choose another path");
  }
  if (path.toLowerCase().endsWith(".gz")) {
    fail(`output is written uncompressed: drop ".gz" from ${basename(path)}`);
  }
  const ext = extname(path).toLowerCase();
  if (ext && ext !== inputExt && !format.extensions.includes(ext)) {
    fail(
      `output is written in the input's format (${format.name}): use a ${
        format.extensions.join(" or ")
      } file name`,
    );
  }
  try {
    return await checkOutputPath(path);
  } catch (error) {
    if (error instanceof LoomUsageError) fail(error.message);
    throw error;
  }
}

/** The dataset's layout, from its opening alone (see {@link PlanOptions.knownRows}). */
async function layoutOf(job: LoadedJob, format: FormatV1) {
  const reader = await openJobDataset(job, format);
  // Closed before a row is read: a fault past the header is the merge's to tell (as a change).
  await reader.rows[Symbol.asyncIterator]().return?.();
  return reader.layout;
}

/** What every plan starts with: the input checked, its format, and the output path. */
async function prepare(
  job: LoadedJob,
  registry: Registry,
  context: PluginContext,
  checkOutput: boolean | undefined,
) {
  const input = job.spec.dataset.path;
  await assertDatasetFile(input);
  const { name: formatName, format } = await resolveFormat(job, registry, context);
  const output = checkOutput === false ? "" : await resolveOutput(job, format);
  return { input, formatName, format, output };
}

/**
 * Opens the job's dataset (`tap` sees the file's bytes as they are read). A format's complaint
 * about `dataset.options` is a problem of the job file, so it is reported at the options' position.
 */
export async function openJobDataset(
  job: LoadedJob,
  format: FormatV1,
  tap?: ByteTap,
): Promise<DatasetReader> {
  try {
    return await openDataset(job.spec.dataset.path, format, job.spec.dataset.options, tap);
  } catch (error) {
    if (
      error instanceof LoomUsageError && error.name === "LoomUsageError" && job.spec.dataset.options
    ) {
      throw new LoomJobError([{
        where: job.where(["dataset", "options"]),
        path: "dataset.options",
        message: error.message,
      }]);
    }
    throw error;
  }
}

/**
 * Checks that the prompt, system prompt and id refer to columns the dataset has. Formats without
 * a header (JSON, JSONL) only know their columns from rows, so an empty one is not checked.
 */
function checkColumns(job: LoadedJob, columns: readonly string[], known: boolean): void {
  if (!known) return;
  const have = new Set(columns);
  const list = columns.length ? columns.map((c) => JSON.stringify(c)).join(", ") : "(none)";
  const issues = [];
  const prompt = job.spec.prompt;
  /** An issue for each column a template (`prompt.template` or `prompt.system`) names but lacks. */
  const checkTemplate = (part: "template" | "system", text: string) => {
    for (const c of promptColumns({ template: text }).filter((c) => !have.has(c))) {
      issues.push({
        where: job.where(["prompt", part]),
        path: `prompt.${part}`,
        message: `names column "${c}", which the dataset lacks (columns: ${list})`,
      });
    }
  };
  if (prompt?.template !== undefined) checkTemplate("template", prompt.template);
  else {
    const column = prompt?.column ?? DEFAULT_PROMPT_COLUMN;
    if (!have.has(column)) {
      issues.push(
        prompt?.column === undefined
          ? {
            where: job.where(["dataset", "path"]),
            path: "prompt.column",
            message:
              `the dataset has no "${DEFAULT_PROMPT_COLUMN}" column; name the prompt column with prompt.column or --col (columns: ${list})`,
          }
          : {
            where: job.where(["prompt", "column"]),
            path: "prompt.column",
            message: `the dataset has no column "${column}" (columns: ${list})`,
          },
      );
    }
  }
  if (prompt?.system !== undefined) checkTemplate("system", prompt.system);
  const id = job.spec.dataset.id;
  if (id !== undefined && !have.has(id)) {
    issues.push({
      where: job.where(["dataset", "id"]),
      path: "dataset.id",
      message: `the dataset has no column "${id}" (columns: ${list})`,
    });
  }
  if (issues.length) {
    throw new LoomJobError(issues, `job does not fit ${displayPath(job.spec.dataset.path)}`);
  }
}

/** Checks a job against its dataset and decides its output; reads the dataset once. */
export async function planJob(
  job: LoadedJob,
  registry: Registry,
  context: PluginContext,
  options: PlanOptions = {},
): Promise<Plan> {
  const { signal, onRow, knownRows } = options;
  if (knownRows !== undefined) {
    const prepared = await prepare(job, registry, context, options.checkOutput);
    const layout = await layoutOf(job, prepared.format);
    const columns = [...(layout.columns ?? [])];
    const added = addedColumns(job, prepared.format, columns, options.answerFields);
    return { ...prepared, layout, rows: knownRows, columns, ...added };
  }
  const reading = await readPlan(job, registry, context, options);
  for await (const rows of rowChunksOf(reading.reader)) {
    for (const row of rows) {
      signal?.throwIfAborted();
      onRow?.(row);
      reading.see(row);
    }
  }
  return reading.finish();
}

/**
 * The columns Loom adds to the dataset's `columns`, checked: none may be there already, and the
 * answer schema's fields (columns of their own in a flat format) may not clash with either.
 */
function addedColumns(
  job: LoadedJob,
  format: FormatV1,
  columns: readonly string[],
  answerFields: readonly string[] | undefined,
): { fieldColumns: readonly string[]; added: string[] } {
  const input = job.spec.dataset.path;
  // A structured answer is one object where a cell can hold one, else a column per field.
  const fieldColumns = answerFields && !format.nested ? answerFields : [];
  const added = [
    ...fieldColumns,
    RESPONSE_COLUMN,
    ERROR_COLUMN,
    ...(job.spec.output?.with_meta ? META_COLUMNS : []),
    ...(job.spec.output?.with_usage ? USAGE_COLUMNS : []),
  ];
  const clashing = fieldColumns.filter((c) =>
    columns.includes(c) || added.indexOf(c) !== added.lastIndexOf(c)
  );
  if (clashing.length) {
    throw new LoomJobError(
      [{
        where: job.where(["schema"]),
        path: "schema",
        message: `field(s) ${
          clashing.map((c) => `"${c}"`).join(", ")
        } would become column(s) that ${
          displayPath(input)
        } already has (or that Loom adds); rename them in the schema`,
      }],
      "the answer schema does not fit the output",
    );
  }
  const clash = added.filter((c) => columns.includes(c));
  if (clash.length) {
    throw new LoomUsageError(
      `${displayPath(input)}: already has column(s) ${
        clash.join(", ")
      }, which Loom adds; rename them (is this an output file?)`,
    );
  }
  return { fieldColumns, added };
}

/**
 * A plan made in the caller's own reading of the dataset (`loom tokens` counts as it reads): the
 * dataset is opened once, the caller shows `see` every row it reads, and `finish` makes the plan.
 */
export interface PlanReading {
  /** The opened dataset; its rows are read by the caller, once. */
  readonly reader: DatasetReader;
  /** Notes a row read: counts it and, in a format without a header, learns its columns. */
  see(row: DatasetRow): void;
  /**
   * Whether every column the job names is known to exist: at once where a header names them, for
   * JSON and JSONL once the rows seen have them all (a column Loom adds may still fail `finish`).
   */
  readonly columnsFound: boolean;
  /** The plan once every row was seen; throws what {@link planJob} throws for a misfit job. */
  finish(): Plan;
}

/**
 * Plans a job in the caller's reading of its dataset ({@link PlanReading}). Where a header names
 * the columns (CSV), the job is checked against it before this returns, so before any row is read;
 * formats without one (JSON, JSONL) learn their columns from the rows, so `finish` checks them.
 * Reports the same errors as {@link planJob}; `options.tap` sees the file's bytes as they are read.
 */
export async function readPlan(
  job: LoadedJob,
  registry: Registry,
  context: PluginContext,
  options: Pick<PlanOptions, "answerFields" | "checkOutput" | "tap"> = {},
): Promise<PlanReading> {
  const { input, formatName, format, output } = await prepare(
    job,
    registry,
    context,
    options.checkOutput,
  );
  const reader = await openJobDataset(job, format, options.tap);
  const { layout } = reader;
  const header = layout.columns;
  const seen = new Set<string>(header ?? []);
  let rows = 0;
  const fit = () => {
    const columns = [...seen];
    checkColumns(job, columns, header !== undefined || rows > 0);
    return { columns, ...addedColumns(job, format, columns, options.answerFields) };
  };
  let fitted: ReturnType<typeof fit> | undefined;
  if (header) {
    try {
      fitted = fit();
    } catch (error) {
      // Leaving a reading closes the file: one row (read with the header) is taken, then left.
      for await (const _ of reader.rows) break;
      throw error;
    }
  }
  let found = header !== undefined;
  /** Whether the columns seen so far pass the check that `finish` makes of them all. */
  const named = () => {
    try {
      checkColumns(job, [...seen], true);
      return true;
    } catch {
      return false;
    }
  };
  return {
    reader,
    see: header ? () => void rows++ : (row) => {
      rows++;
      const known = seen.size;
      for (const key of Object.keys(row.fields)) seen.add(key);
      if (!found && seen.size > known) found = named();
    },
    get columnsFound() {
      return found;
    },
    finish: () => ({ input, output, format, formatName, layout, rows, ...(fitted ?? fit()) }),
  };
}
