/**
 * Fault rules: the emulator's way of misbehaving on demand, the way providers do in production.
 * A rule matches requests (by method, path, prompt text, batch, every Nth, the first N) and
 * answers them with an error status (with or without retry hints), a slow answer, a dropped
 * connection, an answer lost after the request was carried out (`lost`), or a normal answer
 * whose text is replaced (`reply`).
 *
 * A `reply` rule only ever applies to requests that generate an answer: each provider's sync
 * generate endpoint (OpenAI chat completions and responses, Anthropic messages, Gemini
 * generateContent, OpenRouter chat completions) and each line of a batch when the batch runs. A
 * batch line is matched as the request it stands for (`POST` to its endpoint's path: the
 * line's `url` for OpenAI, `/v1/messages` for Anthropic, `/<version>/models/<model>:generateContent`
 * for Gemini, the batch's `endpoint` (`/v1/chat/completions`) for OpenRouter), with its own prompts, and `batch` matches the id of the batch it is in. Only the
 * lines that get an answer (not the ones the scenario or validation fails) are matched, in input
 * order, so `first` and `every` count them one by one. Other requests never see `reply` rules, nor
 * count against them. The same holds for `error-in-choice` and `model-down` (OpenRouter's sync
 * endpoint only; batch lines never see them).
 * @module
 */

/** What a fault does to a request. */
export type FaultAction =
  /** Answer with this HTTP status and the provider's error body. */
  | {
    kind: "status";
    status: number;
    /** `retry-after` header: seconds (a number) or an HTTP date (a string). */
    retryAfter?: number | string;
    /** `retry-after-ms` header (OpenAI and Anthropic SDKs read it first). */
    retryAfterMs?: number;
    /** Error message (default: the provider's usual one for the status). */
    message?: string;
    /** Anthropic `error.type` / OpenAI `error.code` override, e.g. `insufficient_quota`. */
    code?: string;
    /** `x-should-retry` header, which the OpenAI and Anthropic SDKs obey over the status. */
    shouldRetry?: boolean;
    /** Answer with this HTML instead of the provider's JSON error (a proxy's error page). */
    html?: string;
    /**
     * Extra members of the error object, as the provider renders them: OpenRouter `metadata`
     * (`{ provider_name, raw }`), Anthropic `details` (`{ error_code }`), OpenAI `param`.
     */
    extra?: Record<string, unknown>;
  }
  /** Wait this long, then answer normally. */
  | { kind: "slow"; delayMs: number }
  /** Close the connection without answering. */
  | { kind: "drop" }
  /**
   * Handle the request normally (a batch create makes its batch, billed as any other) but lose
   * the answer: sent `delayMs` late (`late`: past the client's timeout), the connection reset
   * once it is handled (`reset`), or never sent while the emulator runs (`never`). With
   * `listedAfter`, the batch it created is left out of the next N batch list calls (a provider
   * lists a new batch with a delay).
   */
  | { kind: "lost"; answer: "late" | "reset" | "never"; delayMs?: number; listedAfter?: number }
  /** OpenRouter style: HTTP 200 whose body is an error. */
  | { kind: "error-in-200"; message?: string; code?: number }
  /**
   * OpenRouter style: HTTP 200 with a normal envelope whose choice stopped partway with
   * `finish_reason: "error"` and the error in `choices[].error` (`{code, message, metadata}`),
   * its content the part generated before the failure. Routes that answer only; others answer 500.
   */
  | { kind: "error-in-choice"; message?: string; code?: number }
  /**
   * OpenRouter: the requested model (or `model`) is down for the matched requests, so the
   * request's `models` fallbacks are tried in order and the answer names the model that served;
   * with none left, the model's 502. Routes that answer only; others answer 500.
   */
  | { kind: "model-down"; model?: string }
  /**
   * Answer normally (status 200, the provider's envelope, usage and finish reason, all as the
   * generated answer would have them) but with exactly this text as the answer's content: no cut
   * at the token cap, no stop sequence. Output token usage counts this text. For testing how a
   * client copes with an answer that is not valid JSON, or does not match its schema.
   */
  | { kind: "reply"; text: string };

/** Which requests a rule applies to; every given condition must hold. */
export interface FaultMatch {
  method?: string;
  /** A substring of the path, or a regular expression. */
  path?: string | RegExp;
  /** Requests whose prompt text (any message, any batch line) contains this. */
  promptContains?: string;
  /** Requests about this batch (its id appears in the path). */
  batch?: string;
  /** Only every Nth matching request (the Nth, 2Nth, …). */
  every?: number;
  /** Only the first N matching requests. */
  first?: number;
}

/** One rule. */
export interface FaultRule {
  /** A name for logs. */
  name?: string;
  match?: FaultMatch;
  action: FaultAction;
}

/** What the engine needs to know about a request. */
export interface FaultSubject {
  method: string;
  path: string;
  /** Prompt texts the request carries (the provider extracts them). */
  prompts: () => string[];
  /** The batch a batch line belongs to (a `batch` condition matches a substring of it, as of a path). */
  batch?: string;
}

/** Decides, request by request, which fault (if any) applies. Counters are per rule. */
export class FaultEngine {
  readonly #rules: FaultRule[];
  readonly #seen: number[];

  constructor(rules: readonly FaultRule[] = []) {
    this.#rules = [...rules];
    this.#seen = this.#rules.map(() => 0);
  }

  /** Adds a rule at run time (tests switch faults on between steps). */
  add(rule: FaultRule): void {
    this.#rules.push(rule);
    this.#seen.push(0);
  }

  /** Removes every rule. */
  clear(): void {
    this.#rules.length = 0;
    this.#seen.length = 0;
  }

  /**
   * The first rule that applies to this request, counting it against every rule it matches.
   * `consider` limits the rules looked at; the others neither apply nor count.
   */
  pick(
    subject: FaultSubject,
    consider: (rule: FaultRule) => boolean = () => true,
  ): FaultRule | undefined {
    let chosen: FaultRule | undefined;
    this.#rules.forEach((rule, i) => {
      if (!consider(rule) || !matches(rule.match ?? {}, subject)) return;
      const n = ++this.#seen[i];
      const { every, first } = rule.match ?? {};
      if (every !== undefined && n % every !== 0) return;
      if (first !== undefined && n > first) return;
      chosen ??= rule;
    });
    return chosen;
  }
}

function matches(match: FaultMatch, subject: FaultSubject): boolean {
  if (match.method && match.method.toUpperCase() !== subject.method) return false;
  if (match.path !== undefined) {
    const ok = typeof match.path === "string"
      ? subject.path.includes(match.path)
      : match.path.test(subject.path);
    if (!ok) return false;
  }
  if (
    match.batch !== undefined && !subject.path.includes(match.batch) &&
    !subject.batch?.includes(match.batch)
  ) return false;
  if (
    match.promptContains !== undefined &&
    !subject.prompts().some((p) => p.includes(match.promptContains!))
  ) return false;
  return true;
}

/**
 * Parses the launcher's compact fault syntax, e.g.
 * `status=429,retry-after=2,every=5` or `drop,first=3,path=/v1/chat` or `slow=2000,prompt=SLOW`
 * or `lost=late,delay=5000,listed-after=2,path=/v1/batches,method=POST,first=1`
 * or `error-in-choice,code=502,prompt=CUT` or `model-down=openai/gpt-4o`
 * or `reply={"a":1%2C"b":,prompt=BAD` (a reply's text is percent-decoded, so `%2C` is a comma).
 */
export function parseFaultSpec(spec: string): FaultRule {
  const fields = new Map<string, string>();
  for (const part of spec.split(",")) {
    const [key, ...rest] = part.split("=");
    fields.set(key.trim(), rest.join("=").trim());
  }
  const num = (key: string) => {
    const value = Number(fields.get(key));
    if (!Number.isFinite(value)) throw new Error(`fault "${spec}": ${key} needs a number`);
    return value;
  };
  let action: FaultAction;
  if (fields.has("status")) {
    action = { kind: "status", status: num("status") };
    if (fields.has("retry-after")) action.retryAfter = num("retry-after");
    if (fields.has("retry-after-ms")) action.retryAfterMs = num("retry-after-ms");
    if (fields.has("message")) action.message = fields.get("message");
    if (fields.has("code")) action.code = fields.get("code");
    if (fields.has("should-retry")) action.shouldRetry = fields.get("should-retry") === "true";
  } else if (fields.has("slow")) action = { kind: "slow", delayMs: num("slow") };
  else if (fields.has("drop")) action = { kind: "drop" };
  else if (fields.has("lost")) {
    const answer = fields.get("lost") || "reset";
    if (answer !== "late" && answer !== "reset" && answer !== "never") {
      throw new Error(`fault "${spec}": lost is late, reset or never`);
    }
    action = { kind: "lost", answer };
    if (fields.has("delay")) action.delayMs = num("delay");
    if (fields.has("listed-after")) action.listedAfter = num("listed-after");
  } else if (fields.has("error-in-200")) action = { kind: "error-in-200" };
  else if (fields.has("error-in-choice")) {
    action = { kind: "error-in-choice" };
    if (fields.has("code")) action.code = num("code");
    if (fields.has("message")) action.message = fields.get("message");
  } else if (fields.has("model-down")) {
    action = {
      kind: "model-down",
      ...(fields.get("model-down") ? { model: fields.get("model-down") } : {}),
    };
  } else if (fields.has("reply")) {
    let text = fields.get("reply")!;
    try {
      text = decodeURIComponent(text);
    } catch {
      throw new Error(`fault "${spec}": reply needs a text whose % escapes are valid`);
    }
    action = { kind: "reply", text };
  } else {throw new Error(
      `fault "${spec}": say status=N, slow=MS, drop, lost=late|reset|never, error-in-200, error-in-choice, model-down[=MODEL] or reply=TEXT`,
    );}
  const match: FaultMatch = {};
  if (fields.has("every")) match.every = num("every");
  if (fields.has("first")) match.first = num("first");
  if (fields.has("path")) match.path = fields.get("path");
  if (fields.has("method")) match.method = fields.get("method");
  if (fields.has("prompt")) match.promptContains = fields.get("prompt");
  if (fields.has("batch")) match.batch = fields.get("batch");
  return { name: spec, match, action };
}
