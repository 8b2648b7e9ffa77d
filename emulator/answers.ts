/**
 * Deterministic answers: every emulated model answers a request with a pure function of it, so a
 * merged output can be checked row by row, and reports token usage from a simple, documented
 * count (one token per whitespace-separated word, at least one per non-empty text).
 *
 * Structured (JSON) answers are measured differently: compact JSON (`JSON.stringify`, no spaces)
 * would be one or a few "words" however long it is, so a cap could never cut it. A JSON answer
 * counts one token per 4 characters (rounded up), and `max_tokens` cuts it to its first
 * `4 × max_tokens` characters (never between the halves of a surrogate pair), which leaves a
 * truncated, unparseable JSON text and the provider's truncation finish reason. Input tokens are
 * always counted in words. See {@link Measure}, {@link measureTokens}, {@link limitAnswer}.
 * @module
 */

/** Tokens in a text: its whitespace-separated words. */
export function countTokens(text: string): number {
  const words = text.trim().split(/\s+/).filter(Boolean);
  return words.length;
}

/** How an answer's tokens are counted: `words` (plain text) or `json` (4 characters a token). */
export type Measure = "words" | "json";

/** Characters per token of a JSON answer. */
export const JSON_CHARS_PER_TOKEN = 4;

/** An answer's output tokens under a measure. */
export function measureTokens(text: string, measure: Measure): number {
  return measure === "json" ? Math.ceil(text.length / JSON_CHARS_PER_TOKEN) : countTokens(text);
}

/**
 * Cuts a text to `max` tokens under a measure: the first `max` words (keeping the spacing between
 * them, trailing space dropped), or the first `4 × max` characters of a JSON text.
 */
export function cutToTokens(text: string, max: number, measure: Measure = "words"): string {
  if (measure === "json") {
    let end = Math.min(text.length, Math.max(0, max) * JSON_CHARS_PER_TOKEN);
    // Never leave half a surrogate pair behind.
    if (end > 0 && end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1])) end--;
    return text.slice(0, end);
  }
  let kept = 0;
  let out = "";
  for (const piece of text.split(/(\s+)/)) {
    if (/\S/.test(piece)) {
      if (kept === max) break;
      kept++;
    }
    out += piece;
  }
  return out.trimEnd();
}

/**
 * An answer text held to `maxTokens` (when given) under a measure: the text itself with `stop`,
 * or its cut with `length` when it has more tokens than that.
 */
export function limitAnswer(
  text: string,
  measure: Measure,
  maxTokens?: number,
): { text: string; finish: "stop" | "length" } {
  if (maxTokens === undefined || measureTokens(text, measure) <= maxTokens) {
    return { text, finish: "stop" };
  }
  return { text: cutToTokens(text, maxTokens, measure), finish: "length" };
}

/** The answer to one request, before a provider wraps it in its own shape. */
export interface Answer {
  text: string;
  /** `stop`, or `length` when `maxTokens` cut it. */
  finish: "stop" | "length";
  inputTokens: number;
  outputTokens: number;
}

/**
 * The answer to a prompt: `[<model>] <prompt>`, cut to `maxTokens` words when that is smaller.
 * `inputTokens` counts every input text (system prompt and all messages).
 */
export function answer(
  model: string,
  prompt: string,
  inputs: readonly string[],
  maxTokens?: number,
): Answer {
  const { text, finish } = limitAnswer(`[${model}] ${prompt}`, "words", maxTokens);
  const inputTokens = inputs.reduce((sum, t) => sum + countTokens(t), 0);
  return { text, finish, inputTokens, outputTokens: countTokens(text) };
}

/** A stable 32-bit hash (FNV-1a), for shuffled but reproducible orders. */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A short random-looking but deterministic id suffix from a counter (hex). */
export function hexId(n: number, width = 24): string {
  // A fixed multiplicative hash spreads consecutive counters over the id space.
  let x = (BigInt(n) + 1n) * 0x9e3779b97f4a7c15n;
  let out = "";
  while (out.length < width) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    out += x.toString(16).padStart(16, "0");
  }
  return out.slice(0, width);
}
