/**
 * The price table Loom ships: US dollars per million tokens, standard (sync) tier, with the
 * batch price where it differs (every batch API listed here charges half). Prices change: the
 * table carries the date it was checked, the plan prints it, and a job can give its own prices
 * (`cost.prices`), which win. A router's `vendor/model` id takes its vendor's price where the
 * router passes the vendor's prices through ({@link ROUTED_VENDORS}).
 * @module
 */

/** Prices of one model, in USD per million tokens. */
export interface ModelPrice {
  readonly input: number;
  readonly output: number;
  /** Batch prices (default: half of the sync prices). */
  readonly batchInput?: number;
  readonly batchOutput?: number;
}

/** When the table below was checked against the providers' price pages. */
export const PRICES_AS_OF = "2025-11-15";

/** Model id (or the id without its date suffix) → price, by provider. */
export const PRICES: Readonly<Record<string, Readonly<Record<string, ModelPrice>>>> = {
  openai: {
    "gpt-5": { input: 1.25, output: 10 },
    "gpt-5-mini": { input: 0.25, output: 2 },
    "gpt-5-nano": { input: 0.05, output: 0.4 },
    "gpt-4.1": { input: 2, output: 8 },
    "gpt-4.1-mini": { input: 0.4, output: 1.6 },
    "gpt-4.1-nano": { input: 0.1, output: 0.4 },
    "gpt-4o": { input: 2.5, output: 10 },
    "gpt-4o-mini": { input: 0.15, output: 0.6 },
    "o3": { input: 2, output: 8 },
    "o3-mini": { input: 1.1, output: 4.4 },
    "o4-mini": { input: 1.1, output: 4.4 },
    "gpt-3.5-turbo": { input: 0.5, output: 1.5 },
  },
  anthropic: {
    "claude-opus-4-5": { input: 5, output: 25 },
    "claude-opus-4-1": { input: 15, output: 75 },
    "claude-opus-4": { input: 15, output: 75 },
    "claude-sonnet-4-5": { input: 3, output: 15 },
    "claude-sonnet-4": { input: 3, output: 15 },
    "claude-haiku-4-5": { input: 1, output: 5 },
    "claude-3-5-haiku": { input: 0.8, output: 4 },
  },
  google: {
    // gemini-2.5-pro: prompts up to 200k tokens (longer ones cost more).
    "gemini-2.5-pro": { input: 1.25, output: 10 },
    "gemini-2.5-flash": { input: 0.3, output: 2.5 },
    "gemini-2.5-flash-lite": { input: 0.1, output: 0.4 },
    "gemini-2.0-flash": { input: 0.1, output: 0.4 },
    "gemini-2.0-flash-lite": { input: 0.075, output: 0.3 },
  },
  echo: {
    "*": { input: 0, output: 0 },
  },
};

/**
 * Routers whose `vendor/model` ids cost what the vendor charges, by router: the vendor prefix →
 * the provider of the table above whose prices apply. OpenRouter's FAQ: it "passes through the
 * pricing of the underlying providers … so you get the same pricing you'd get from the provider
 * directly". Only vendors that are also the model's one price-setter are listed: an open-weight
 * model (`meta-llama/…`) is served by many hosts at their own prices, so it has no table price.
 */
export const ROUTED_VENDORS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  openrouter: { openai: "openai", anthropic: "anthropic", google: "google" },
};

/**
 * A job's estimate as a job or run record keeps it (`loom plan`'s figures for the mode it ran in):
 * shown beside what the provider reported it cost.
 */
export interface RecordedEstimate {
  /** US dollars, in the mode the job ran in. */
  readonly cost: number;
  readonly inputTokens: number;
  /** The output tokens the cost assumes (each request's `max_tokens`, or an assumption). */
  readonly outputTokens: number;
  /** Where the price came from ({@link PriceSource.from}). */
  readonly price: string;
}

/** Where a price came from. */
export interface PriceSource {
  readonly price: ModelPrice;
  /**
   * `job` (the job's `cost.prices`), `table <date>`, or, for a router's model,
   * `table <date>, as <vendor> <model>` (the vendor's entry it was priced as).
   */
  readonly from: string;
}

/**
 * The price of a model: the job's own, else the table's entry for the id, for the id without a
 * date suffix (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-5-20250929`), or the provider's `*`. A
 * router's `vendor/model` id is priced as the vendor's model ({@link ROUTED_VENDORS}), with the
 * router's dotted versions read as the vendor's dashed ones (OpenRouter's
 * `anthropic/claude-sonnet-4.5` is Anthropic's `claude-sonnet-4-5`); an id with a variant
 * (`:free`, `:nitro`, `:floor`, …) routes or bills otherwise, so it has no table price.
 */
export function priceOf(
  provider: string,
  model: string,
  override?: ModelPrice,
): PriceSource | undefined {
  if (override) return { price: override, from: "job" };
  const vendors = ROUTED_VENDORS[provider];
  if (vendors) return routedPrice(vendors, model);
  const table = PRICES[provider];
  if (!table) return undefined;
  const base = model.replace(/-\d{4}-\d{2}-\d{2}$/, "").replace(/-\d{8}$/, "").replace(
    /^models\//,
    "",
  );
  const price = table[model] ?? table[base] ?? table["*"];
  return price ? { price, from: `table ${PRICES_AS_OF}` } : undefined;
}

/** A router's `vendor/model` priced as the vendor's model, or undefined. */
function routedPrice(
  vendors: Readonly<Record<string, string>>,
  model: string,
): PriceSource | undefined {
  const slash = model.indexOf("/");
  if (slash < 0 || model.includes(":")) return undefined;
  const vendor = vendors[model.slice(0, slash)];
  const name = model.slice(slash + 1);
  if (!vendor) return undefined;
  for (const id of new Set([name, name.replaceAll(".", "-")])) {
    const found = priceOf(vendor, id);
    if (found) return { price: found.price, from: `${found.from}, as ${vendor} ${id}` };
  }
  return undefined;
}

/** A price's batch rates, and whether each is its own (given) or half the sync rate (default). */
export function batchRates(
  price: ModelPrice,
): { input: number; output: number; given: { input: boolean; output: boolean } } {
  return {
    input: price.batchInput ?? price.input / 2,
    output: price.batchOutput ?? price.output / 2,
    given: { input: price.batchInput !== undefined, output: price.batchOutput !== undefined },
  };
}

/** The cost in USD of some input and output tokens, in sync or batch mode. */
export function costOf(
  price: ModelPrice,
  mode: "sync" | "batch",
  input: number,
  output: number,
): { input: number; output: number; total: number } {
  const rates = mode === "batch" ? batchRates(price) : price;
  const cost = { input: (input * rates.input) / 1e6, output: (output * rates.output) / 1e6 };
  return { ...cost, total: cost.input + cost.output };
}
