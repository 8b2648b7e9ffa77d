/**
 * Deterministic answers: every emulated model answers a request with a pure function of it, so a
 * merged output can be checked row by row, and reports token usage from a simple, documented
 * count (one token per whitespace-separated word, at least one per non-empty text).
 * @module
 */

/** Tokens in a text: its whitespace-separated words. */
export function countTokens(text: string): number {
  const words = text.trim().split(/\s+/).filter(Boolean);
  return words.length;
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
export function answer(model: string, prompt: string, inputs: readonly string[], maxTokens?: number): Answer {
  const full = `[${model}] ${prompt}`;
  const words = full.split(/(\s+)/); // keeps the separators, so a cut answer keeps its spacing
  let text = full;
  let finish: Answer["finish"] = "stop";
  if (maxTokens !== undefined && countTokens(full) > maxTokens) {
    let kept = 0;
    let out = "";
    for (const piece of words) {
      if (/\S/.test(piece)) {
        if (kept === maxTokens) break;
        kept++;
      }
      out += piece;
    }
    text = out.trimEnd();
    finish = "length";
  }
  const inputTokens = inputs.reduce((sum, t) => sum + countTokens(t), 0);
  return { text, finish, inputTokens, outputTokens: countTokens(text) };
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
