/**
 * Loom's provider-neutral request as a Gemini `generateContent` call. One builder for sync calls
 * and (later) batch requests. Parameters may be written as Loom names them (`max_tokens`,
 * `top_p`, `stop`), in snake case (`top_k`) or as Gemini does (`topK`); the SDK would silently
 * drop a name it does not know, so unknown ones are refused before any work.
 * @module
 */
import type { GenerateParams, GenerateRequest, ParamProblem, ParamsContext } from "../../../core/spec/provider.ts";
import { commonParamProblems } from "../_shared/params.ts";

/** Loom's parameter names → Gemini's `generationConfig` names. */
const RENAMED: Record<string, string> = { max_tokens: "maxOutputTokens", top_p: "topP", stop: "stopSequences" };

/**
 * `GenerateContentConfig` fields of @google/genai 1.x that a job may set (the SDK's transport
 * fields, `systemInstruction` and the abort signal are Loom's).
 */
const CONFIG_FIELDS = new Set([
  "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseLogprobs", "logprobs",
  "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema", "responseJsonSchema",
  "routingConfig", "modelSelectionConfig", "safetySettings", "tools", "toolConfig", "labels", "cachedContent",
  "responseModalities", "mediaResolution", "speechConfig", "audioTimestamp", "thinkingConfig", "imageConfig",
  "enableEnhancedCivicAnswers", "modelArmorConfig", "serviceTier",
]);

/** A job parameter's Gemini name. */
function geminiName(key: string): string {
  return RENAMED[key] ?? key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Problems with a job's parameters, for `validateParams`. */
export function paramProblems(params: GenerateParams, context: ParamsContext): ParamProblem[] {
  const named = Object.fromEntries(Object.entries(params).map(([k, v]) => [geminiName(k), v]));
  const problems = commonParamProblems(named, context, { count: "candidateCount", schemaParam: "responseJsonSchema" });
  if (context.structured && named.responseSchema !== undefined) {
    problems.push({ param: "responseSchema", message: "the job's schema sets the answer schema; give it only once, with schema:" });
  }
  for (const key of Object.keys(params)) {
    const name = geminiName(key);
    if (params[key] === undefined || CONFIG_FIELDS.has(name) || name === "stream") continue;
    problems.push({ param: key, message: `Gemini's generation config has no ${name}; see GenerateContentConfig for the parameters it takes` });
  }
  return problems;
}

/** The `generateContent` parameters (without the abort signal) for a request. */
export function generateContentParams(request: GenerateRequest): { model: string; contents: unknown[]; config: Record<string, unknown> } {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request.params)) {
    if (value === undefined) continue;
    const name = geminiName(key);
    config[name] = name === "stopSequences" && !Array.isArray(value) ? [value] : value;
  }
  if (request.system) config.systemInstruction = request.system;
  if (request.responseSchema) {
    config.responseMimeType = "application/json";
    config.responseJsonSchema = request.responseSchema;
  }
  return {
    model: request.model,
    contents: request.messages.map((m) => ({ role: m.role === "assistant" ? "model" : "user", parts: [{ text: m.content }] })),
    config,
  };
}
