/**
 * Loom's provider-neutral request as a Gemini `generateContent` call. One builder for sync calls
 * and (later) batch requests. Parameters may be written as Loom names them (`max_tokens`,
 * `top_p`, `stop`), in snake case (`top_k`) or as Gemini does (`topK`); the SDK would silently
 * drop a name it does not know, so unknown ones are refused before any work.
 * @module
 */
import { LoomProviderError } from "../../../core/base/errors.ts";
import type {
  GenerateParams,
  GenerateRequest,
  GenerateResult,
  ParamProblem,
  ParamsContext,
} from "../../../core/spec/provider.ts";
import { commonParamProblems } from "../_shared/params.ts";

/** Loom's parameter names → Gemini's `generationConfig` names. */
const RENAMED: Record<string, string> = {
  max_tokens: "maxOutputTokens",
  top_p: "topP",
  stop: "stopSequences",
};

/**
 * `GenerateContentConfig` fields of @google/genai 1.x that a job may set (the SDK's transport
 * fields, `systemInstruction` and the abort signal are Loom's).
 */
const CONFIG_FIELDS = new Set([
  "temperature",
  "topP",
  "topK",
  "candidateCount",
  "maxOutputTokens",
  "stopSequences",
  "responseLogprobs",
  "logprobs",
  "presencePenalty",
  "frequencyPenalty",
  "seed",
  "responseMimeType",
  "responseSchema",
  "responseJsonSchema",
  "routingConfig",
  "modelSelectionConfig",
  "safetySettings",
  "tools",
  "toolConfig",
  "labels",
  "cachedContent",
  "responseModalities",
  "mediaResolution",
  "speechConfig",
  "audioTimestamp",
  "thinkingConfig",
  "imageConfig",
  "enableEnhancedCivicAnswers",
  "modelArmorConfig",
  "serviceTier",
]);

/** A job parameter's Gemini name. */
function geminiName(key: string): string {
  return RENAMED[key] ?? key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Problems with a job's parameters, for `validateParams`. */
export function paramProblems(params: GenerateParams, context: ParamsContext): ParamProblem[] {
  const named = Object.fromEntries(Object.entries(params).map(([k, v]) => [geminiName(k), v]));
  const problems = commonParamProblems(named, context, {
    count: "candidateCount",
    schemaParam: "responseJsonSchema",
  });
  if (context.structured && named.responseSchema !== undefined) {
    problems.push({
      param: "responseSchema",
      message: "the job's schema sets the answer schema; give it only once, with schema:",
    });
  }
  for (const key of Object.keys(params)) {
    const name = geminiName(key);
    if (params[key] === undefined || CONFIG_FIELDS.has(name) || name === "stream") continue;
    problems.push({
      param: key,
      message:
        `Gemini's generation config has no ${name}; see GenerateContentConfig for the parameters it takes`,
    });
  }
  return problems;
}

/** The `generateContent` parameters (without the abort signal) for a request. */
export function generateContentParams(
  request: GenerateRequest,
): { model: string; contents: unknown[]; config: Record<string, unknown> } {
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
    contents: request.messages.map((m) => ({
      role: m.role === "assistant" ? "model" : "user",
      parts: [{ text: m.content }],
    })),
    config,
  };
}

/**
 * Whether a Gemini model thinks unless told not to (the thinking guide: the 2.5 models and later,
 * except Flash-Lite; the 2.0 models never think). The `-latest` aliases follow the models they
 * name at the time. A model this does not know is taken not to, so no note is shown for it.
 */
export function thinksByDefault(model: string): boolean {
  const id = model.replace(/^models\//, "");
  if (/flash-lite/.test(id)) return false;
  return /^gemini-(2\.5|[3-9])/.test(id) || /^gemini-(flash|pro)-latest$/.test(id);
}

/**
 * The notes a Gemini job gets: a thinking model's thoughts come out of `max_tokens`, so a cap set
 * without a thinking config may leave rows with no answer at all.
 */
export function jobNotes(params: GenerateParams, context: ParamsContext): string[] {
  const named = Object.fromEntries(Object.entries(params).map(([k, v]) => [geminiName(k), v]));
  if (
    named.maxOutputTokens === undefined || named.thinkingConfig !== undefined ||
    !thinksByDefault(context.model)
  ) return [];
  return [
    `${context.model} thinks before it answers, and its thinking tokens count against max_tokens (${named.maxOutputTokens}) ` +
    "and are billed as output; a row whose thinking uses all of them gets no answer (set params.thinking_config.thinking_budget, or raise max_tokens).",
  ];
}

/**
 * `GenerateContentConfig` fields the SDK sends at the top level of a `generateContent` request;
 * every other config field goes into `generationConfig` (as the SDK's
 * `generateContentConfigToMldev` does).
 */
const REQUEST_LEVEL = new Set([
  "systemInstruction",
  "safetySettings",
  "tools",
  "toolConfig",
  "labels",
  "cachedContent",
  "serviceTier",
]);

/** Config fields the SDK refuses in Gemini Developer API mode (Vertex AI only). */
const VERTEX_ONLY = new Set([
  "routingConfig",
  "modelSelectionConfig",
  "audioTimestamp",
  "modelArmorConfig",
]);

/**
 * A request in the REST wire form of `GenerateContentRequest` (without the model): what the SDK
 * sends for {@link generateContentParams}, for the lines of a batch input file, so file batches
 * send what sync calls and inline batches send. `{contents, systemInstruction?, generationConfig?,
 * safetySettings?, tools?, toolConfig?, labels?, cachedContent?, serviceTier?}`.
 *
 * Values pass through as given; the SDK rewrites two rarely used ones that this does not: a
 * `responseSchema` written as JSON Schema (type lists, nullable `anyOf`), and `parameters` of
 * `tools` function declarations. The job's own schema (`responseJsonSchema`) is sent as is by both.
 */
export function wireRequest(request: GenerateRequest): Record<string, unknown> {
  const { contents, config } = generateContentParams(request);
  const wire: Record<string, unknown> = { contents };
  const generationConfig: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (VERTEX_ONLY.has(key)) {
      throw new Error(
        `google: ${key} is only supported on Vertex AI, not the Gemini Developer API`,
      );
    }
    if (key === "systemInstruction") {
      // The SDK turns a string into a user-role Content.
      wire.systemInstruction = typeof value === "string"
        ? { parts: [{ text: value }], role: "user" }
        : value;
    } else if (key === "cachedContent" && typeof value === "string") {
      wire.cachedContent = value.includes("/") ? value : `cachedContents/${value}`;
    } else if (REQUEST_LEVEL.has(key)) wire[key] = value;
    else generationConfig[key] = value;
  }
  if (Object.keys(generationConfig).length > 0) wire.generationConfig = generationConfig;
  return wire;
}

/**
 * The parts of a `GenerateContentResponse` Loom reads: the SDK's class (sync), an inline batch
 * response (a plain object) and a results-file line's `response` (REST JSON) all have them.
 */
export interface GeminiAnswer {
  readonly candidates?: ReadonlyArray<{
    readonly content?: {
      readonly parts?: ReadonlyArray<{ readonly text?: string; readonly thought?: boolean }>;
    };
    readonly finishReason?: string;
  }>;
  readonly promptFeedback?: { readonly blockReason?: string };
  readonly usageMetadata?: {
    readonly promptTokenCount?: number;
    readonly candidatesTokenCount?: number;
    readonly thoughtsTokenCount?: number;
  };
  readonly modelVersion?: string;
}

/** Finish reasons of an answer withheld or cut by a safety or policy filter. */
const BLOCKED = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
]);

/**
 * Loom's result for a Gemini answer, the same for sync calls and batch results. A blocked prompt
 * (no candidate) is that row's own problem: a non-fatal, non-retryable `LoomProviderError`.
 *
 * Usage as billed: Gemini's `candidatesTokenCount` leaves thinking out (it is reported apart as
 * `thoughtsTokenCount`, and `totalTokenCount` counts both), while thoughts are billed as output;
 * so output tokens are the two together, and the thoughts are the reasoning tokens. A thinking
 * model that spent `maxOutputTokens` on thoughts answers with no text and `MAX_TOKENS`, which is
 * `truncated` with empty text: the core makes that the row's error. `model` is `modelVersion`.
 */
export function answerResult(response: GeminiAnswer): GenerateResult {
  const candidate = response.candidates?.[0];
  if (!candidate) {
    const reason = response.promptFeedback?.blockReason ?? "no candidate";
    throw new LoomProviderError(`google: the prompt was blocked (${reason})`, { status: 400 });
  }
  // Thought summaries are not the answer.
  const text = (candidate.content?.parts ?? []).filter((p) => !p.thought).map((p) => p.text ?? "")
    .join("");
  const reason = candidate.finishReason;
  return {
    text,
    finishReason: reason ?? undefined,
    ...(reason === "MAX_TOKENS" ? { truncated: true } : {}),
    ...(reason && BLOCKED.has(reason) ? { refusal: `blocked (${reason})` } : {}),
    usage: usageOf(response.usageMetadata),
    ...(response.modelVersion ? { model: response.modelVersion } : {}),
  };
}

/** Loom's usage for a `usageMetadata` (proto3 JSON leaves zero counts out). */
function usageOf(usage: GeminiAnswer["usageMetadata"]): GenerateResult["usage"] {
  if (!usage) return { inputTokens: undefined, outputTokens: undefined };
  const { promptTokenCount, candidatesTokenCount, thoughtsTokenCount } = usage;
  return {
    inputTokens: promptTokenCount,
    outputTokens: (candidatesTokenCount ?? 0) + (thoughtsTokenCount ?? 0),
    ...(thoughtsTokenCount ? { reasoningTokens: thoughtsTokenCount } : {}),
  };
}

/**
 * The `generateContentRequest` of a `countTokens` call for a request: the model (as
 * `models/<id>`) and the {@link wireRequest} that sync calls and batches send, with the system
 * instruction, the contents and the generation config (the answer schema among it). Counting the
 * whole request this way is the Gemini API's own means of counting a system instruction: the
 * `contents` form counts contents alone, and the SDK refuses `config.systemInstruction` and
 * `config.generationConfig` outside Vertex AI.
 */
export function countTokensRequest(request: GenerateRequest): Record<string, unknown> {
  const model = /^(models|tunedModels)\//.test(request.model)
    ? request.model
    : `models/${request.model}`;
  return { model, ...wireRequest(request) };
}
