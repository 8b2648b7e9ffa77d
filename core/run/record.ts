/**
 * Records of sync runs in the state store (`StorageV2.runs`), for `loom view`'s jobs page: what
 * ran, how far it got, what it cost. A run's record is written when it starts, at most every few
 * seconds while it runs (one small write, from a timer: never per row), and when it ends, well or
 * not. It holds counts, tokens and costs, never a key, a prompt or an answer.
 * @module
 */
import { randomBytes } from "node:crypto";
import { errorMessage, LoomInterruptedError, LoomUsageError } from "../base/errors.ts";
import type { RowOutcome } from "../base/events.ts";
import type { RecordedEstimate } from "../data/prices.ts";
import type { RunTableV2 } from "../spec/storage.ts";

/** Version of the record layout; a record of another version is skipped, never misread. */
export const RUN_RECORD_VERSION = 1;

/** How a run stands: `interrupted` when stopped by Ctrl-C, `failed` when an error ended it. */
export type RunStatus = "running" | "finished" | "interrupted" | "failed";

/** Everything Loom records of a sync run. */
export interface RunRecord {
  readonly version: typeof RUN_RECORD_VERSION;
  readonly id: string;
  readonly jobFile?: string;
  readonly provider: string;
  readonly model: string;
  /** Absolute paths of the input and the output. */
  readonly input: string;
  readonly output: string;
  /** The format plugin the output was written with (the input's). */
  readonly format: string;
  /** The machine that ran it (`LOOM_HOST_ID`, or its host name). */
  readonly host: string;
  readonly startedAt: string;
  updatedAt: string;
  endedAt?: string;
  status: RunStatus;
  /** Rows in the input. */
  readonly rows: number;
  /** Rows with an answer (from a call or the cache), rows that failed, and the cached ones. */
  answered: number;
  failed: number;
  cached: number;
  /** Tokens of the answers this run's calls got (cached answers were paid for before). */
  inputTokens: number;
  outputTokens: number;
  /** What the provider reported this run's calls cost, in US dollars; absent when none did. */
  cost?: number;
  /** The estimate the run made before it started (with a spend cap), when it made one. */
  readonly estimate?: RecordedEstimate;
  /** Rows answered in each minute since the start (the last entry is the current minute). */
  perMinute: number[];
  /** Why it failed or stopped (secrets scrubbed). */
  error?: string;
}

/** What a run is, as its record names it. */
export type RunIdentity = Pick<
  RunRecord,
  "jobFile" | "provider" | "model" | "input" | "output" | "format" | "host" | "rows" | "estimate"
>;

/** A new run id: `run-`, the date, then random hex (`run-20261127-3fa9c2`). */
export function newRunId(now = new Date()): string {
  return `run-${now.toISOString().slice(0, 10).replaceAll("-", "")}-${
    randomBytes(3).toString("hex")
  }`;
}

/** Milliseconds between the writes of a running run's record, by default. */
export const DEFAULT_RECORD_EVERY_MS = 5_000;

/**
 * A running run's record is written at least this often, even when no row ended (a run waiting
 * out a rate limit): a record not written for much longer belongs to a process that is gone.
 */
export const HEARTBEAT_MS = 30_000;

/**
 * The interval `env` asks for: `LOOM_RUN_RECORD_SECONDS` (tests make it short; at most a
 * minute, so a live run never looks gone), else 5 s.
 */
export function recordEveryMs(env: Readonly<Record<string, string | undefined>>): number {
  const seconds = Number(env.LOOM_RUN_RECORD_SECONDS);
  return Number.isFinite(seconds) && seconds > 0
    ? Math.min(seconds, 60) * 1000
    : DEFAULT_RECORD_EVERY_MS;
}

/**
 * Keeps one sync run's record up to date. A store that fails a write is warned of once, and
 * the run goes on: its record is a view of it, not part of its work.
 */
export class RunRecorder {
  readonly record: RunRecord;
  readonly #table: RunTableV2;
  readonly #started: number;
  readonly #warn: (message: string) => void;
  #timer?: ReturnType<typeof setInterval>;
  #writing?: Promise<void>;
  #dirty = false;
  #warned = false;
  #writtenAt = 0;

  constructor(
    table: RunTableV2,
    identity: RunIdentity,
    options: { warn: (message: string) => void; now?: number },
  ) {
    this.#table = table;
    this.#warn = options.warn;
    this.#started = options.now ?? Date.now();
    const at = new Date(this.#started).toISOString();
    this.record = {
      version: RUN_RECORD_VERSION,
      id: newRunId(new Date(this.#started)),
      ...identity,
      startedAt: at,
      updatedAt: at,
      status: "running",
      answered: 0,
      failed: 0,
      cached: 0,
      inputTokens: 0,
      outputTokens: 0,
      perMinute: [0],
    };
  }

  /**
   * Writes the first record, then every `everyMs` while something changed, and at least every
   * {@link HEARTBEAT_MS} while nothing did.
   */
  async start(everyMs = DEFAULT_RECORD_EVERY_MS): Promise<void> {
    await this.#write();
    this.#timer = setInterval(() => {
      if (this.#writing) return;
      if (this.#dirty || Date.now() - this.#writtenAt >= HEARTBEAT_MS) void this.#write();
    }, everyMs);
  }

  /** Counts a row as it ends (cheap: a few additions, no write). */
  row(outcome: RowOutcome, now = Date.now()): void {
    const r = this.record;
    if (outcome === "error") r.failed++;
    else {
      r.answered++;
      if (outcome === "cached") r.cached++;
      const minute = Math.floor((now - this.#started) / 60_000);
      while (r.perMinute.length <= minute) r.perMinute.push(0);
      r.perMinute[minute]++;
    }
    this.#dirty = true;
  }

  /** Where the tokens and cost so far are read from at each write (the run's tally). */
  usage?: { readonly inputTokens: number; readonly outputTokens: number; readonly total?: number };

  /**
   * Writes the final record: `finished`, or how `error` ended the run (`interrupted` for an
   * interruption). Waits for a write in progress first, so the last word is this one.
   */
  async end(error?: unknown, redact: (text: string) => string = (t) => t): Promise<void> {
    clearInterval(this.#timer);
    const r = this.record;
    r.endedAt = new Date().toISOString();
    if (error === undefined) r.status = "finished";
    else {
      r.status = error instanceof LoomInterruptedError ? "interrupted" : "failed";
      r.error = redact(errorMessage(error));
    }
    await this.#writing;
    await this.#write();
  }

  #write(): Promise<void> {
    const r = this.record;
    // Minutes without an answer count as such (up to now), not as missing.
    const now = Date.now();
    const minute = Math.floor((now - this.#started) / 60_000);
    while (r.perMinute.length <= minute) r.perMinute.push(0);
    this.#writtenAt = now;
    if (this.usage) {
      r.inputTokens = this.usage.inputTokens;
      r.outputTokens = this.usage.outputTokens;
      if (this.usage.total !== undefined) r.cost = this.usage.total;
    }
    r.updatedAt = new Date(now).toISOString();
    this.#dirty = false;
    const done = () => (this.#writing = undefined);
    this.#writing = this.#table.put(r.id, JSON.stringify(r)).then(done, (error) => {
      done();
      if (this.#warned) return;
      this.#warned = true;
      this.#warn(`cannot record the run in the state store: ${errorMessage(error)}`);
    });
    return this.#writing;
  }
}

/** Every readable run record, newest first; records of another version are left out. */
export async function listRuns(table: RunTableV2): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (const stored of await table.list()) {
    const record = parseRun(stored.record);
    if (record) runs.push(record);
  }
  return runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id));
}

/** The record of run `id`, or undefined (also when it cannot be read). */
export async function loadRun(table: RunTableV2, id: string): Promise<RunRecord | undefined> {
  const text = await table.get(id);
  return text === undefined ? undefined : parseRun(text);
}

/**
 * The run `id` names: its whole id or a unique beginning of it (as `loom list --runs` shows
 * them). A store without run records, no such run or several are the user's to fix.
 */
export async function findRun(table: RunTableV2 | undefined, id: string): Promise<RunRecord> {
  const exact = table && await loadRun(table, id);
  if (exact) return exact;
  const prefixed = table ? (await listRuns(table)).filter((r) => r.id.startsWith(id)) : [];
  if (prefixed.length === 1) return prefixed[0];
  if (prefixed.length > 1) {
    throw new LoomUsageError(
      `"${id}" matches several sync runs (${
        prefixed.map((r) => r.id).join(", ")
      }); give more of the id`,
    );
  }
  throw new LoomUsageError(`no sync run "${id}" (see loom list --runs)`);
}

function parseRun(text: string): RunRecord | undefined {
  try {
    const record = JSON.parse(text);
    return record?.version === RUN_RECORD_VERSION ? record as RunRecord : undefined;
  } catch {
    return undefined;
  }
}
