/**
 * How a shard's saved outcomes lie in the state store: one stored row holds either one outcome
 * (`{"i":…}`, as Loom wrote them before record version 2, and still for a lone error) or a **run**
 * of them (`[…,…]`, keyed by its first row): outcomes that came in ascending row order, a few rows
 * apart at most. A provider returns a batch's results in about the order they were sent, so a
 * million outcomes take some thirty thousand rows instead of a million: an insert and a read of a
 * store row cost far more than the JSON inside. Results that came in any other order are saved one
 * a row, as before.
 *
 * In a run, an answer of the usual shape is a **tuple** (`[row, text, finishReason, usage, model,
 * truncated, refusal]`, usage as `[input, output, reasoning, cost]`, absent fields `null` and
 * trailing ones left off, so a tuple saved before the cost was kept reads back as it was) instead
 * of an object: its field names were 40% of a million answers' JSON, which
 * the store writes and the merge parses. Anything a tuple cannot give back exactly (another field,
 * fields in another order, a number JSON cannot hold) stays an object; both read back as the same
 * outcome that `JSON.parse(JSON.stringify(outcome))` gives.
 * @module
 */
import type { GenerateResult, Usage } from "../spec/provider.ts";
import type { ResultRow } from "../spec/storage.ts";
import type { SavedOutcome } from "./store.ts";

/**
 * Outcomes in one run at most: runs of 128 saved no time more and, read back as 128 objects at
 * once, raised a 1M-row fetch's peak by 50 MiB.
 */
const RUN_OUTCOMES = 32;
/** Characters of JSON in one run at most (a store's write batch holds thousands of rows). */
const RUN_CHARS = 8 * 1024;
/**
 * How far past the run's last row the next may be and still join it. Bounds a run's span, and so
 * how many runs a reader holds at once, whatever order the outcomes came in.
 */
const RUN_GAP = 16;

/**
 * The rows to save for a shard's outcomes, streamed: an answer goes on as it comes (the first
 * answer of a row wins), an error is held back to the end (an answer for its row may follow; a
 * later error replaces it). Nothing else is held (beyond the runs an array of outcomes ended), so
 * saving a shard holds no more than its errors, whatever its size. Outcomes are packed into runs
 * (see the module's comment).
 */
export async function* resultRows(
  outcomes: AsyncIterable<SavedOutcome | readonly SavedOutcome[]>,
): AsyncGenerator<ResultRow> {
  const answered = new RowSet();
  const errors = new Map<number, string>();
  const runs = new RunPacker();
  const ended: ResultRow[] = [];
  const add = (o: SavedOutcome) => {
    if (answered.has(o.i)) return;
    if ("r" in o) {
      answered.add(o.i);
      if (errors.size) errors.delete(o.i);
      const run = runs.add(o.i, encodeOutcome(o));
      if (run) ended.push(run);
    } else errors.set(o.i, JSON.stringify(o));
  };
  // Outcomes come one at a time or in arrays (a chunk of a provider's results).
  for await (const got of outcomes) {
    if (Array.isArray(got)) { for (const o of got as readonly SavedOutcome[]) add(o); }
    else add(got as SavedOutcome);
    if (ended.length) {
      yield* ended;
      ended.length = 0;
    }
  }
  const last = runs.end();
  if (last) yield last;
  for (const row of [...errors.keys()].sort((a, b) => a - b)) {
    const ended = runs.add(row, errors.get(row)!);
    if (ended) yield ended;
  }
  const tail = runs.end();
  if (tail) yield tail;
}

/** A stored outcome: an object, or an answer's tuple (see the module's comment). */
type StoredOutcome = SavedOutcome | AnswerTuple;
type AnswerTuple = [
  row: number,
  text: string,
  finishReason?: string | null,
  usage?: (number | null)[] | null,
  model?: string | null,
  truncated?: boolean | null,
  refusal?: string | null,
];

/** A result's fields in the order providers write them, which is the order a tuple gives back. */
const RESULT_KEYS = ["text", "finishReason", "truncated", "refusal", "usage", "model"] as const;
const USAGE_KEYS = ["inputTokens", "outputTokens", "reasoningTokens", "cost"] as const;

/** An outcome's stored JSON: a tuple when it gives the answer back exactly, else the object. */
export function encodeOutcome(o: SavedOutcome): string {
  if (!("r" in o)) return JSON.stringify(o);
  const r = o.r;
  if (typeof r.text !== "string" || !inOrder(r, RESULT_KEYS)) return JSON.stringify(o);
  const usage = r.usage === undefined ? null : usageTuple(r.usage);
  if (
    usage === undefined ||
    !optional(r.finishReason, "string") || !optional(r.model, "string") ||
    !optional(r.truncated, "boolean") || !optional(r.refusal, "string")
  ) return JSON.stringify(o);
  const tuple: unknown[] = [
    o.i,
    r.text,
    r.finishReason ?? null,
    usage,
    r.model ?? null,
    r.truncated ?? null,
    r.refusal ?? null,
  ];
  while (tuple[tuple.length - 1] === null) tuple.pop();
  return JSON.stringify(tuple);
}

/** The outcome a stored one stands for. */
function decodeOutcome(stored: StoredOutcome): SavedOutcome {
  if (!Array.isArray(stored)) return stored;
  const [i, text, finishReason, usage, model, truncated, refusal] = stored;
  const r: { -readonly [K in keyof GenerateResult]: GenerateResult[K] } = { text };
  if (finishReason != null) r.finishReason = finishReason;
  if (truncated != null) r.truncated = truncated;
  if (refusal != null) r.refusal = refusal;
  if (usage != null) {
    const u: { -readonly [K in keyof Usage]: Usage[K] } = {};
    USAGE_KEYS.forEach((key, k) => {
      if (usage[k] != null) u[key] = usage[k]!;
    });
    r.usage = u;
  }
  if (model != null) r.model = model;
  return { i, r };
}

/** Usage as a tuple, or undefined when one would not give it back exactly. */
function usageTuple(usage: Usage): (number | null)[] | undefined {
  if (typeof usage !== "object" || usage === null || !inOrder(usage, USAGE_KEYS)) return undefined;
  const tuple: (number | null)[] = [];
  for (const key of USAGE_KEYS) {
    const n = usage[key];
    if (n !== undefined && !Number.isFinite(n)) return undefined;
    tuple.push(n ?? null);
  }
  while (tuple[tuple.length - 1] === null) tuple.pop();
  return tuple;
}

/** Whether `value` is absent or of type `type` (null is neither: JSON keeps it). */
function optional(value: unknown, type: "string" | "boolean"): boolean {
  return value === undefined || typeof value === type;
}

/**
 * Whether the fields JSON would keep of `object` (those not undefined) are among `keys`, in the
 * same order.
 */
function inOrder(object: object, keys: readonly string[]): boolean {
  let k = 0;
  // `for…in` rather than `Object.entries`: no array a field, a million answers in a fetch.
  for (const key in object) {
    if ((object as Record<string, unknown>)[key] === undefined) continue;
    while (k < keys.length && keys[k] !== key) k++;
    if (k === keys.length) return false;
    k++;
  }
  return true;
}

/** Packs outcomes' JSON into runs as they come. */
class RunPacker {
  #first = 0;
  #last = 0;
  #parts: string[] = [];
  #chars = 0;

  /** Adds row `row`'s outcome; answers the run it ended, if it could not join it. */
  add(row: number, json: string): ResultRow | undefined {
    const n = this.#parts.length;
    const ended = n && (row <= this.#last || row > this.#last + RUN_GAP || n === RUN_OUTCOMES ||
        this.#chars + json.length > RUN_CHARS)
      ? this.end()
      : undefined;
    if (!this.#parts.length) this.#first = row;
    this.#parts.push(json);
    this.#last = row;
    this.#chars += json.length + 1;
    return ended;
  }

  /** Ends the current run: its stored row, or undefined when it is empty. */
  end(): ResultRow | undefined {
    const parts = this.#parts;
    if (!parts.length) return undefined;
    this.#parts = [];
    this.#chars = 0;
    // A lone object stays bare, as older versions stored it; a lone tuple is a run of one.
    const lone = parts.length === 1 && parts[0].startsWith("{");
    return { row: this.#first, value: lone ? parts[0] : `[${parts.join(",")}]` };
  }
}

/**
 * A set of row numbers as one bit a row, outside the JS heap: a shard's 50,000 rows in a `Set`
 * grew its table in steps to over a megabyte, each step a large object left for the old
 * generation's collection.
 */
class RowSet {
  #bits = new Uint8Array(0);

  has(row: number): boolean {
    return ((this.#bits[row >>> 3] ?? 0) & (1 << (row & 7))) !== 0;
  }

  add(row: number): void {
    const byte = row >>> 3;
    if (byte >= this.#bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.#bits.length * 2, 1024));
      grown.set(this.#bits);
      this.#bits = grown;
    }
    this.#bits[byte] |= 1 << (row & 7);
  }
}

/** A run being read: its outcomes, and the next one to hand out. */
interface OpenRun {
  readonly outcomes: readonly SavedOutcome[];
  at: number;
}

/**
 * A shard's saved outcomes in ascending row order, from its stored rows (each one outcome or a
 * run; the store hands them out by their first row). Runs may overlap when the outcomes came out
 * of order, so the runs begun are merged by their next row; since a run never spans more than
 * {@link RUN_GAP} rows an outcome, only the runs near the current row are held.
 */
export class SavedOutcomeReader {
  readonly #rows: AsyncIterator<ResultRow>;
  /** The next stored row, read ahead; `null` once there are no more. */
  #ahead: ResultRow | null | undefined;
  /** The runs begun and not finished: a binary heap by each run's next row. */
  readonly #open: OpenRun[] = [];

  constructor(rows: AsyncIterable<ResultRow>) {
    this.#rows = rows[Symbol.asyncIterator]();
  }

  /**
   * The next outcome in row order, or undefined after the last. Answered at once (no promise)
   * while the outcomes come from runs already read, which is all but one call a run: a merge asks
   * for a million of them, and a promise each was a good part of its garbage.
   */
  next(): SavedOutcome | undefined | Promise<SavedOutcome | undefined> {
    const open = this.#open;
    const ahead = this.#ahead;
    // The stored row read ahead starts past the smallest open row: that row is the next.
    if (ahead !== undefined && open.length && (ahead === null || ahead.row > this.#key(0))) {
      return this.#take();
    }
    return this.#read();
  }

  /** {@link next} when a stored row must be read first. */
  async #read(): Promise<SavedOutcome | undefined> {
    const open = this.#open;
    // A stored row that starts at or before the smallest open row begins its run first.
    for (;;) {
      if (this.#ahead === undefined) {
        const step = await this.#rows.next();
        this.#ahead = step.done ? null : step.value;
      }
      const ahead = this.#ahead;
      if (ahead === null || (open.length && ahead.row > this.#key(0))) break;
      this.#ahead = undefined;
      // An array is always a run (a lone tuple is stored as a run of one).
      const parsed = JSON.parse(ahead.value) as SavedOutcome | StoredOutcome[];
      const outcomes = Array.isArray(parsed) ? parsed.map(decodeOutcome) : [parsed as SavedOutcome];
      if (outcomes.length) this.#push({ outcomes, at: 0 });
    }
    return this.#take();
  }

  /** Hands out the smallest open row's outcome. */
  #take(): SavedOutcome | undefined {
    const top = this.#open[0];
    if (!top) return undefined;
    const outcome = top.outcomes[top.at++];
    if (top.at === top.outcomes.length) this.#pop();
    else this.#sink(0);
    return outcome;
  }

  /** Stops reading (the store's reader is closed). */
  async close(): Promise<void> {
    await this.#rows.return?.();
  }

  #key(k: number): number {
    const run = this.#open[k];
    return run.outcomes[run.at].i;
  }

  #push(run: OpenRun): void {
    const heap = this.#open;
    heap.push(run);
    for (let k = heap.length - 1; k > 0;) {
      const parent = (k - 1) >> 1;
      if (this.#key(parent) <= this.#key(k)) break;
      [heap[parent], heap[k]] = [heap[k], heap[parent]];
      k = parent;
    }
  }

  #pop(): void {
    const heap = this.#open;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      this.#sink(0);
    }
  }

  #sink(k: number): void {
    const heap = this.#open;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let least = k;
      if (l < heap.length && this.#key(l) < this.#key(least)) least = l;
      if (r < heap.length && this.#key(r) < this.#key(least)) least = r;
      if (least === k) return;
      [heap[least], heap[k]] = [heap[k], heap[least]];
      k = least;
    }
  }
}
