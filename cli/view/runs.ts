/**
 * The jobs page's sync runs: each run record in the state store as the viewer shows it. As for
 * batch jobs (`jobs.ts`), only the fields named here leave the server.
 * @module
 */
import { existsSync } from "node:fs";
import { displayPath } from "../../core/base/paths.ts";
import { listRuns, loadRun, type RunRecord } from "../../core/run/record.ts";
import type { RecordedEstimate } from "../../core/data/prices.ts";
import type { StorageV2 } from "../../core/spec/storage.ts";

/**
 * A running run's record with no update for this long belongs to a process that is gone (killed,
 * or its machine stopped): it is shown as `lost`. A live run writes every 5 s.
 */
export const LOST_AFTER_MS = 2 * 60_000;

/** A sync run as the jobs page shows it. */
export interface ShownRun {
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  readonly input: string;
  readonly output: string;
  /** Whether the output file exists (its rows can be viewed). */
  readonly outputReady: boolean;
  /** `running`, `finished`, `interrupted`, `failed`, or `lost` (running, but silent too long). */
  readonly status: string;
  /** Whether the record may still change. */
  readonly active: boolean;
  readonly rows: number;
  readonly answered: number;
  readonly failed: number;
  readonly cached: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** US dollars the provider reported, or null when it reported none. */
  readonly cost: number | null;
  readonly estimate: RecordedEstimate | null;
  readonly host: string;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly endedAt: string | null;
  readonly error: string | null;
}

/** A run with its answers per minute (`/api/runs/:id`). */
export interface ShownRunDetail extends ShownRun {
  /** Rows answered in each minute since the start. */
  readonly perMinute: readonly number[];
}

/** A run record as the viewer shows it, its paths relative to `cwd`. */
export function showRun(r: RunRecord, cwd: string, now = Date.now()): ShownRun {
  const lost = r.status === "running" && now - Date.parse(r.updatedAt) > LOST_AFTER_MS;
  return {
    id: r.id,
    provider: r.provider,
    model: r.model,
    input: displayPath(r.input, cwd),
    output: displayPath(r.output, cwd),
    outputReady: existsSync(r.output),
    status: lost ? "lost" : r.status,
    active: r.status === "running" && !lost,
    rows: r.rows,
    answered: r.answered,
    failed: r.failed,
    cached: r.cached,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    cost: r.cost ?? null,
    estimate: r.estimate
      ? {
        cost: r.estimate.cost,
        inputTokens: r.estimate.inputTokens,
        outputTokens: r.estimate.outputTokens,
        price: r.estimate.price,
      }
      : null,
    host: r.host,
    startedAt: r.startedAt,
    updatedAt: r.updatedAt,
    endedAt: r.endedAt ?? null,
    error: r.error ?? null,
  };
}

/** Every sync run in the store, newest first (none when the store keeps no run records). */
export async function listShownRuns(storage: StorageV2, cwd: string): Promise<ShownRun[]> {
  if (!storage.runs) return [];
  return (await listRuns(storage.runs)).map((r) => showRun(r, cwd));
}

/** One run with its answers per minute, or undefined when there is no such run. */
export async function shownRun(
  storage: StorageV2,
  id: string,
  cwd: string,
): Promise<ShownRunDetail | undefined> {
  const record = storage.runs && await loadRun(storage.runs, id);
  if (!record) return undefined;
  return { ...showRun(record, cwd), perMinute: record.perMinute.map(Number) };
}
