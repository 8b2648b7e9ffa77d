/**
 * The OpenAI models the emulator knows by default, with the two traits that change validation:
 * the largest completion a model allows, and whether it is a reasoning model (which refuses
 * `max_tokens`, sampling parameters other than the defaults, and accepts `reasoning_effort`).
 * @module
 */

interface ModelTraits {
  maxOutput: number;
  reasoning: boolean;
}

const TRAITS: Record<string, ModelTraits> = {
  "gpt-3.5-turbo": { maxOutput: 4096, reasoning: false },
  "gpt-4o": { maxOutput: 16384, reasoning: false },
  "gpt-4o-2024-08-06": { maxOutput: 16384, reasoning: false },
  "gpt-4o-mini": { maxOutput: 16384, reasoning: false },
  "gpt-4o-mini-2024-07-18": { maxOutput: 16384, reasoning: false },
  "gpt-4.1": { maxOutput: 32768, reasoning: false },
  "gpt-4.1-mini": { maxOutput: 32768, reasoning: false },
  "gpt-4.1-nano": { maxOutput: 32768, reasoning: false },
  "gpt-5": { maxOutput: 128000, reasoning: true },
  "gpt-5-mini": { maxOutput: 128000, reasoning: true },
  "gpt-5-nano": { maxOutput: 128000, reasoning: true },
  "gpt-5.1": { maxOutput: 128000, reasoning: true },
  "o1": { maxOutput: 100000, reasoning: true },
  "o3": { maxOutput: 100000, reasoning: true },
  "o3-mini": { maxOutput: 100000, reasoning: true },
  "o4-mini": { maxOutput: 100000, reasoning: true },
};

/** Model ids accepted when the emulator is not told otherwise. */
export const OPENAI_MODELS: readonly string[] = Object.keys(TRAITS);

/**
 * What the emulator knows about a model: a listed id, or a dated snapshot of one
 * (`o4-mini-2025-04-16` is o4-mini), accepted when the emulator's `models` option allows it.
 * Undefined for other ids.
 */
export function modelTraits(model: string): ModelTraits | undefined {
  return TRAITS[model] ?? TRAITS[model.replace(/-\d{4}-\d{2}-\d{2}$/, "")];
}
