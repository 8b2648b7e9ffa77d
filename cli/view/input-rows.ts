/**
 * The rows of a batch job not merged yet: its input file's rows (indexed as an output is, through
 * Loom's format), each with where it stands: answered or failed in a batch already fetched (a job
 * reopened by a retry), pending in a batch the provider still runs, or not sent. Read from the job's
 * record and its saved results; the provider is not asked.
 * @module
 */
import { stat } from "node:fs/promises";
import type { Hono } from "hono";
import { savedOutcomes } from "../../core/batch/fetch.ts";
import { phaseOf } from "../../core/batch/shard.ts";
import type { SavedOutcome, ShardRecord } from "../../core/batch/store.ts";
import { displayPath } from "../../core/base/paths.ts";
import { jobState, PHASE_NAMES } from "../commands/batch.ts";
import type { ViewSources } from "./app.ts";
import { Answer, jobOf, queryOf } from "./targets.ts";

/** Where a row of an unmerged job stands. */
export type InputRowState = "answered" | "failed" | "pending" | "not sent";

/** A row's state from the shards holding it (a retry's last) and its best saved outcome. */
function stateOf(
  holding: readonly ShardRecord[],
  outcome: SavedOutcome | undefined,
): { state: InputRowState; detail: string } {
  const last = holding.at(-1);
  if (!last) return { state: "not sent", detail: "in no batch (no prompt, or not submitted)" };
  const batch = `batch ${last.index + 1}`;
  if (!last.fetched) {
    const phase = phaseOf(last);
    if (phase === "cancelled-unsent") {
      return { state: "not sent", detail: `${batch}: ${PHASE_NAMES[phase]}` };
    }
    const where = phase === "submitted" || phase === "ended"
      ? last.state ?? PHASE_NAMES[phase]
      : PHASE_NAMES[phase];
    return { state: "pending", detail: `${batch}: ${where}` };
  }
  if (outcome && "r" in outcome) {
    return { state: "answered", detail: `${batch}: fetched, not merged` };
  }
  if (outcome) return { state: "failed", detail: `${batch}: ${outcome.k}: ${outcome.e}` };
  return { state: "failed", detail: `${batch}: fetched, no result for this row` };
}

/** Registers `GET /api/jobs/:id/input` (offset, limit, q as the rows' route takes them). */
export function registerInputRows(app: Hono, sources: ViewSources): void {
  app.get("/api/jobs/:id/input", async (c) => {
    const record = await jobOf(sources, c.req.param("id"));
    const path = record.input.path;
    const shown = displayPath(path, sources.cwd);
    const found = await stat(path).catch(() => undefined);
    if (!found?.isFile()) {
      throw new Answer(409, `the input of job ${record.id} (${shown}) is gone: moved or removed`);
    }
    const { format: name, options } = record.spec.dataset;
    const format = name === undefined
      ? (await sources.registry.formatForPath(path, sources.context)).format
      : await sources.registry.create("format", name, options ?? {}, sources.context);
    const index = await sources.indexes.of(path, format);
    const query = queryOf(c);
    // File order only: the saved outcomes are walked in ascending row order.
    const page = await index.page({ offset: query.offset, limit: query.limit, text: query.text });
    const saved = savedOutcomes(sources.jobs, record);
    const rows = [];
    try {
      for (const row of page.rows) {
        const { outcome, holding } = await saved.at(row.n);
        rows.push({
          n: row.n,
          fields: row.fields,
          problem: row.problem,
          ...stateOf(holding, outcome),
        });
      }
    } finally {
      await saved.close();
    }
    return c.json({
      title: `job ${record.id}: input ${shown}`,
      job: {
        id: record.id,
        status: jobState(record),
        output: displayPath(record.output, sources.cwd),
      },
      // Rows are matched by position: a file of another size is not the one the job was sent from.
      inputChanged: found.size !== record.input.size,
      columns: page.columns,
      rows,
      indexed: page.indexed,
      matched: page.matched,
      indexing: page.indexing,
      ...(page.stopped ? { stopped: page.stopped } : {}),
    });
  });
}
