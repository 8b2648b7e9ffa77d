/**
 * The sync response cache. The key is the SHA-256 of the canonical JSON of
 * `{v, provider, identity, model, system, messages, params, responseSchema}`, so any change to
 * what is sent (prompt, system prompt, a parameter, the answer schema, the model, the endpoint)
 * misses, and nothing else does.
 * API keys and headers are never part of it. Only successful answers are stored.
 * @module
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../base/canonical-json.ts";
import type { GenerateRequest, GenerateResult } from "../spec/provider.ts";
import type { CacheTableV2 } from "../spec/storage.ts";

/** Bumped when the key recipe or the stored value changes, so old entries are simply missed. */
const CACHE_VERSION = 1;

/** The cache key of a request sent to a provider (64 hex characters). */
export function cacheKey(
  provider: string,
  request: GenerateRequest,
  identity: Readonly<Record<string, string>> = {},
): string {
  const material = canonicalJson({
    v: CACHE_VERSION,
    provider,
    identity,
    model: request.model,
    system: request.system,
    messages: request.messages,
    params: request.params,
    // Only when present, so keys of requests without a schema stay as they were.
    ...(request.responseSchema ? { responseSchema: request.responseSchema } : {}),
  });
  return createHash("sha256").update(material).digest("hex");
}

/** The response cache over a state store's cache table. */
export class ResponseCache {
  readonly table: CacheTableV2;

  constructor(table: CacheTableV2) {
    this.table = table;
  }

  /** The cached answer, or undefined. A corrupt entry counts as a miss. */
  async get(key: string): Promise<GenerateResult | undefined> {
    const raw = await this.table.get(key);
    if (raw === undefined) return undefined;
    try {
      const value = JSON.parse(raw);
      return typeof value?.text === "string" ? value as GenerateResult : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores a successful answer. */
  async set(key: string, result: GenerateResult): Promise<void> {
    const { text, finishReason, usage, model } = result;
    await this.table.set(key, JSON.stringify({ text, finishReason, usage, model }));
  }
}
