/**
 * The values Loom adds to each output row, the same for sync runs and batch merges.
 * @module
 */
import type { LoadedJob } from "../job/load.ts";
import {
  ERROR_COLUMN,
  META_COLUMNS,
  type Plan,
  RESPONSE_COLUMN,
  USAGE_COLUMNS,
} from "../data/plan.ts";
import type { AddedValue, OutputRow } from "../spec/format.ts";
import type { GenerateResult } from "../spec/provider.ts";
import type { RowResult } from "./sync.ts";

/**
 * The columns Loom adds to a row. A structured answer is an object in `llm_response` where the
 * format nests (JSON), else its fields fill their own columns and `llm_response` keeps the raw
 * text. An answer the schema check rejected keeps its raw text and usage too: it was paid for.
 */
export function addedValues(plan: Plan, job: LoadedJob, result: RowResult): OutputRow["added"] {
  const answer = result.result;
  const value = result.outcome === "error" ? undefined : result.value;
  const added: Record<string, AddedValue> = {
    [RESPONSE_COLUMN]: value && plan.format.nested ? (value as AddedValue) : answer?.text ?? null,
    [ERROR_COLUMN]: result.outcome === "error" ? result.error : null,
  };
  for (const field of plan.fieldColumns) added[field] = (value?.[field] ?? null) as AddedValue;
  if (plan.added.includes(META_COLUMNS[0])) {
    added.llm_provider = job.spec.provider;
    // The model that answered, when the provider names it (an OpenRouter fallback, a snapshot).
    added.llm_model = answer?.model ?? job.spec.model;
  }
  if (plan.added.includes(USAGE_COLUMNS[0])) {
    added.llm_finish_reason = answer?.finishReason ?? null;
    added.llm_input_tokens = answer?.usage?.inputTokens ?? null;
    added.llm_output_tokens = answer?.usage?.outputTokens ?? null;
    added.llm_reasoning_tokens = answer?.usage?.reasoningTokens ?? null;
    // What the provider says the row cost (US dollars); Loom never makes one up.
    added.llm_cost = answer?.usage?.cost ?? null;
  }
  return added;
}

/**
 * The costs and tokens the provider reported for a run's answers, added up for its summary
 * (`RunSummary.cost`) and its record.
 */
export class CostTally {
  #total = 0;
  #counted = false;
  /** Input and output tokens of the answers counted (those the provider reported). */
  inputTokens = 0;
  outputTokens = 0;
  /** Answers counted already, where rows may share one (see the constructor). */
  readonly #seen?: WeakSet<GenerateResult>;

  /**
   * `shared`: rows may share one answer object (a sync run's identical requests in flight share
   * one call), which is then counted once. A batch merge's rows each have their own.
   */
  constructor({ shared = false }: { shared?: boolean } = {}) {
    if (shared) this.#seen = new WeakSet();
  }

  /** Counts a row's answer, unless it came from the cache (paid for by an earlier run). */
  add(result: RowResult): void {
    const answer = result.result;
    if (answer === undefined || result.outcome === "cached") return;
    if (this.#seen) {
      if (this.#seen.has(answer)) return;
      this.#seen.add(answer);
    }
    const usage = answer.usage;
    if (usage === undefined) return;
    if (typeof usage.inputTokens === "number") this.inputTokens += usage.inputTokens;
    if (typeof usage.outputTokens === "number") this.outputTokens += usage.outputTokens;
    if (typeof usage.cost !== "number") return;
    this.#total += usage.cost;
    this.#counted = true;
  }

  /**
   * The total in US dollars, rounded to 10 decimals (a sum of many small floats gathers noise
   * there, far below a cent); undefined when no answer reported a cost.
   */
  get total(): number | undefined {
    return this.#counted ? Math.round(this.#total * 1e10) / 1e10 : undefined;
  }
}
