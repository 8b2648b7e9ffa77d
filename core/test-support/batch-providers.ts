/**
 * The batch providers' facts the batch tests share: which emulator serves each, the variable its
 * key is read from, and the request that creates (and is billed as) one batch, for counting
 * creates in the emulator's log.
 * @module
 */

/** The emulator that serves each batch provider. */
export const EMULATED = { openai: "openai", anthropic: "anthropic", google: "gemini" } as const;

/** The environment variable each provider reads its key from. */
export const KEY_ENV = {
  openai: "OPENAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  google: "GEMINI_API_KEY",
} as const;

/** The request that creates (and is billed as) one batch, as `METHOD path` in the emulator's log. */
export const CREATE = {
  openai: /^POST \/v1\/batches$/,
  anthropic: /^POST \/v1\/messages\/batches$/,
  google: /^POST \/v1beta\/models\/[^/]+:batchGenerateContent$/,
} as const;
