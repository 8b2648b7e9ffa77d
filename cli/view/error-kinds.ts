/**
 * The kind of a failed row, told from its `llm_error` text: the output file keeps only the
 * message (a batch's saved outcome knows `failed`/`expired`/`cancelled`, a sync run's error knows
 * its HTTP status, but neither reaches the file). The rules read the words Loom itself writes
 * (`core/data/request.ts`, `core/data/answer-schema.ts`, `core/batch/fetch.ts`) and the status or
 * code a provider's message starts with (`plugins/providers/_shared/http-errors.ts`: `openai: 429
 * …`; batch results: `429: …`, `rate_limit_error: …`, `RESOURCE_EXHAUSTED: …`). The first rule
 * that matches wins, so Loom's own words go before a provider's codes; an error none names is
 * `other`.
 * @module
 */

/** A kind's name and what tells it. */
interface KindRule {
  readonly kind: string;
  /** Matched against the whole message. */
  readonly text?: RegExp;
  /** The HTTP status a provider's message starts with. */
  readonly status?: (status: number) => boolean;
}

const RULES: readonly KindRule[] = [
  {
    kind: "no prompt",
    text: /^(row has no "|empty prompt: nothing was sent|this row was never submitted)/,
  },
  { kind: "expired", text: /^the batch expired|\bbatch_expired\b/ },
  { kind: "cancelled", text: /^the batch was cancelled|\bbatch_cancelled\b|^cancelled before/ },
  {
    kind: "no result",
    text: /^(the batch failed|the provider returned no result|some results could not be read)/,
  },
  {
    kind: "content filter",
    text: /content[_ ]filter|content_policy|moderation|flagged|blocked \(|\bSAFETY\b|PROHIBITED/i,
  },
  { kind: "refused", text: /^the model (refused to answer|gave no answer)/ },
  { kind: "schema", text: /^the answer (does not match the schema|is not valid JSON)/ },
  { kind: "max_tokens", text: /\bmax_tokens\b/ },
  {
    kind: "rate limit",
    status: (s) => s === 429 || s === 529,
    text: /rate[_ ]limit|too many requests|RESOURCE_EXHAUSTED|overloaded/i,
  },
  {
    kind: "timeout",
    status: (s) => s === 408 || s === 504,
    text: /timed out|\btimeout\b|DEADLINE_EXCEEDED/i,
  },
  {
    kind: "server error",
    status: (s) => s >= 500,
    text: /server error|\bapi_error\b|\bINTERNAL\b|\bUNAVAILABLE\b|bad gateway/i,
  },
  {
    kind: "connection",
    text: /ECONNRESET|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|socket hang up|fetch failed|connection/i,
  },
  {
    kind: "bad request",
    status: (s) => s >= 400,
    text: /\binvalid_request|INVALID_ARGUMENT|bad request/i,
  },
];

/** Every kind, in the order the rules try them; `other` last. */
export const ERROR_KINDS: readonly string[] = [...RULES.map((r) => r.kind), "other"];

/**
 * The HTTP status a message starts with, after the provider's name if any: `openai: 429 Rate
 * limit…`, `500: …`, `429 RESOURCE_EXHAUSTED: …`.
 */
function statusOf(message: string): number | undefined {
  const m = /^(?:[a-z][\w.-]*: )?([1-5]\d\d)\b/i.exec(message);
  return m ? Number(m[1]) : undefined;
}

/** The position in {@link ERROR_KINDS} of the kind of an `llm_error` message. */
export function errorKindOf(message: string): number {
  const status = statusOf(message);
  const at = RULES.findIndex((r) =>
    (status !== undefined && r.status?.(status)) || r.text?.test(message)
  );
  return at < 0 ? RULES.length : at;
}
