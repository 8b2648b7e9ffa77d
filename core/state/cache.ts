/**
 * The sync response cache. The key is the SHA-256 of the canonical JSON of
 * `{v, provider, identity, model, system, messages, params, responseSchema}`, so any change to
 * what is sent (prompt, system prompt, a parameter, the answer schema, the model, the endpoint)
 * misses, and nothing else does.
 * API keys and headers are never part of it. Only successful answers are stored.
 * @module
 */
import * as crypto from "node:crypto";
import { canonicalJson } from "../base/canonical-json.ts";
import type { ChatMessage, GenerateRequest, GenerateResult } from "../spec/provider.ts";
import type { CacheTableV2 } from "../spec/storage.ts";

/** Bumped when the key recipe or the stored value changes, so old entries are simply missed. */
const CACHE_VERSION = 1;

/**
 * The cache key of a request sent to a provider (64 hex characters): the SHA-256 of the canonical
 * JSON of `{v, provider, identity, model, system, messages, params, responseSchema}`. Every row
 * of a sync run is keyed, so the outer object, whose members are known, is written in their
 * sorted order directly; the values are written by `canonicalJson`, and the text is the same as
 * that of the whole object (cache.test.ts pins keys computed before).
 */
export function cacheKey(
  provider: string,
  request: GenerateRequest,
  identity: Readonly<Record<string, string>> = {},
): string {
  // Sorted: identity, messages, model, params, provider, responseSchema, system, v. The
  // responseSchema only when present, so keys of requests without a schema stay as they were.
  const material = `{"identity":${identityJson(identity)}` +
    (request.messages === undefined ? "" : `,"messages":${messagesJson(request.messages)}`) +
    member("model", request.model) +
    member("params", request.params) +
    member("provider", provider) +
    (request.responseSchema ? member("responseSchema", request.responseSchema) : "") +
    member("system", request.system) +
    `,"v":${CACHE_VERSION}}`;
  return sha256Hex(material);
}

/** A provider's cache identity, written once: it is fixed for the provider's life. */
const identities = new WeakMap<object, string>();
function identityJson(identity: Readonly<Record<string, string>>): string {
  if (identity === null || typeof identity !== "object") return canonicalJson(identity);
  let text = identities.get(identity);
  if (text === undefined) identities.set(identity, text = canonicalJson(identity));
  return text;
}

/**
 * The messages' canonical JSON, for the shape every request has (`{role, content}` strings)
 * written straight; anything else by `canonicalJson`.
 */
function messagesJson(messages: GenerateRequest["messages"]): string {
  if (!Array.isArray(messages)) return canonicalJson(messages);
  let text = "[";
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    if (!isChatMessage(message)) return canonicalJson(messages);
    text += (i === 0 ? '{"content":' : ',{"content":') + JSON.stringify(message.content) +
      (message.role === "user" ? ',"role":"user"}' : `,"role":${JSON.stringify(message.role)}}`);
  }
  return text + "]";
}

/** A plain object with exactly two members, `role` and `content`, both strings. */
function isChatMessage(message: unknown): message is ChatMessage {
  if (message === null || typeof message !== "object") return false;
  const { role, content } = message as Partial<ChatMessage>;
  if (typeof role !== "string" || typeof content !== "string") return false;
  if (Object.getPrototypeOf(message) !== Object.prototype) return false;
  let members = 0;
  for (const _ in message) members++; // counted without an array of keys
  return members === 2 && Object.hasOwn(message, "role") && Object.hasOwn(message, "content");
}

/** `,"name":value`, or nothing for an undefined value (canonical JSON drops it). */
function member(name: string, value: unknown): string {
  return value === undefined ? "" : `,"${name}":${canonicalJson(value)}`;
}

/**
 * SHA-256 in hex. `crypto.hash` (Node ≥ 20.12 and 21.7, and Deno) hashes a short string in one
 * call, about twice as fast as a `createHash` object on Node; every row of a sync run is keyed.
 */
const sha256Hex: (text: string) => string = typeof crypto.hash === "function"
  ? (text) => crypto.hash("sha256", text, "hex")
  : (text) => crypto.createHash("sha256").update(text).digest("hex");

/** The response cache over a state store's cache table. */
export class ResponseCache {
  readonly table: CacheTableV2;
  /** Answers whose `set` has not settled yet: lookups find them before the store has them. */
  readonly #writing = new Map<string, GenerateResult>();
  /** Writes not settled yet, and who waits for there to be none ({@link ResponseCache.settled}). */
  #unsettled = 0;
  #drained: (() => void)[] = [];

  constructor(table: CacheTableV2) {
    this.table = table;
  }

  /** The cached answer, or undefined. A corrupt entry counts as a miss. */
  async get(key: string): Promise<GenerateResult | undefined> {
    const writing = this.#writing.get(key);
    if (writing) return writing;
    return parseAnswer(await this.table.get(key));
  }

  /**
   * The cached answers of `keys` (the keys that have one), in one round trip when the store has
   * `getMany`, else key by key. Corrupt entries count as misses.
   */
  async getMany(keys: readonly string[]): Promise<Map<string, GenerateResult>> {
    const found = new Map<string, GenerateResult>();
    const asked: string[] = [];
    for (const key of keys) {
      const writing = this.#writing.get(key);
      if (writing) found.set(key, writing);
      else asked.push(key);
    }
    if (asked.length === 0) return found;
    const raw = this.table.getMany ? await this.table.getMany(asked) : await this.#oneByOne(asked);
    for (const [key, text] of raw) {
      const answer = parseAnswer(text);
      if (answer) found.set(key, answer);
    }
    return found;
  }

  async #oneByOne(keys: readonly string[]): Promise<Map<string, string>> {
    const unique = [...new Set(keys)];
    const values = await Promise.all(unique.map((key) => this.table.get(key)));
    const found = new Map<string, string>();
    unique.forEach((key, i) => values[i] !== undefined && found.set(key, values[i]!));
    return found;
  }

  /**
   * Stores a successful answer; resolves once the store has committed it. Until then lookups
   * through this instance find it already, so a caller need not wait before moving on (see
   * {@link ResponseCache.settled}).
   */
  set(key: string, result: GenerateResult): Promise<void> {
    const { text, finishReason, usage, model } = result;
    const answer = { text, finishReason, usage, model };
    this.#writing.set(key, answer);
    this.#unsettled++;
    let write: Promise<void>;
    try {
      write = this.table.set(key, JSON.stringify(answer));
    } catch (error) {
      write = Promise.reject(error);
    }
    // One reaction per write, not a promise chain: a cold run makes 100,000 of them.
    const done = () => {
      if (this.#writing.get(key) === answer) this.#writing.delete(key);
      if (--this.#unsettled === 0) { for (const wake of this.#drained.splice(0)) wake(); }
    };
    write.then(done, done);
    return write;
  }

  /** Resolves once every `set` made so far has settled (committed, or failed). */
  settled(): Promise<void> {
    if (this.#unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }
}

/** A stored answer, or undefined for a missing or corrupt entry. */
function parseAnswer(raw: string | undefined): GenerateResult | undefined {
  if (raw === undefined) return undefined;
  try {
    const value = JSON.parse(raw);
    return typeof value?.text === "string" ? value as GenerateResult : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When a sync run waits for an answer's commit before the row moves on. Waiting makes every
 * answer durable before its worker sends another request (a SIGKILL then loses only the calls in
 * flight), and costs nothing at a network provider's pace; at thousands of answers a second it
 * would make every commit small and the run slow. So a run waits while answers come at up to
 * `perSecond` a second (bursts of `burst`); while they come faster, it lets every row move on,
 * the store committing their answers together (its `set` gathers what comes in one go).
 */
export class CommitPacing {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(
    options: { perSecond?: number; burst?: number; now?: () => number } = {},
  ) {
    this.#perSecond = options.perSecond ?? 100;
    this.#burst = options.burst ?? 20;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#at = this.#now();
  }

  /** Whether to wait for the commit of the answer that just arrived. */
  wait(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + ((now - this.#at) / 1000) * this.#perSecond,
    );
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens--;
      return true;
    }
    // Past the rate, answers run up a debt (up to a second's worth) that a quieter spell pays
    // back: while they keep coming faster, none waits, and the store commits them in large groups.
    this.#tokens = Math.max(this.#tokens - 1, -this.#perSecond);
    return false;
  }
}
