/**
 * Loom's provider-neutral request as a Gemini `generateContent` call. One builder for sync calls
 * and (later) batch requests.
 * @module
 */
import type { GenerateRequest } from "../../../core/spec/provider.ts";

/** Loom's parameter names → Gemini's `generationConfig` names. */
const RENAMED: Record<string, string> = { max_tokens: "maxOutputTokens", top_p: "topP", stop: "stopSequences" };

/** The `generateContent` parameters (without the abort signal) for a request. */
export function generateContentParams(request: GenerateRequest): { model: string; contents: unknown[]; config: Record<string, unknown> } {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request.params)) {
    if (value === undefined) continue;
    const name = RENAMED[key] ?? key;
    config[name] = name === "stopSequences" && !Array.isArray(value) ? [value] : value;
  }
  if (request.system) config.systemInstruction = request.system;
  return {
    model: request.model,
    contents: request.messages.map((m) => ({ role: m.role === "assistant" ? "model" : "user", parts: [{ text: m.content }] })),
    config,
  };
}
