/**
 * Fault rules: the emulator's way of misbehaving on demand, the way providers do in production.
 * A rule matches requests (by method, path, prompt text, batch, every Nth, the first N) and
 * answers them with an error status (with or without retry hints), a slow answer, or a dropped
 * connection.
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
  /** OpenRouter style: HTTP 200 whose body is an error. */
  | { kind: "error-in-200"; message?: string; code?: number };

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

  /** The first rule that applies to this request, counting it against every rule it matches. */
  pick(subject: FaultSubject): FaultRule | undefined {
    let chosen: FaultRule | undefined;
    this.#rules.forEach((rule, i) => {
      if (!matches(rule.match ?? {}, subject)) return;
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
    const ok = typeof match.path === "string" ? subject.path.includes(match.path) : match.path.test(subject.path);
    if (!ok) return false;
  }
  if (match.batch !== undefined && !subject.path.includes(match.batch)) return false;
  if (match.promptContains !== undefined && !subject.prompts().some((p) => p.includes(match.promptContains!))) return false;
  return true;
}

/**
 * Parses the launcher's compact fault syntax, e.g.
 * `status=429,retry-after=2,every=5` or `drop,first=3,path=/v1/chat` or `slow=2000,prompt=SLOW`.
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
  else if (fields.has("error-in-200")) action = { kind: "error-in-200" };
  else throw new Error(`fault "${spec}": say status=N, slow=MS, drop or error-in-200`);
  const match: FaultMatch = {};
  if (fields.has("every")) match.every = num("every");
  if (fields.has("first")) match.first = num("first");
  if (fields.has("path")) match.path = fields.get("path");
  if (fields.has("method")) match.method = fields.get("method");
  if (fields.has("prompt")) match.promptContains = fields.get("prompt");
  if (fields.has("batch")) match.batch = fields.get("batch");
  return { name: spec, match, action };
}
