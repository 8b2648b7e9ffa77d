/**
 * The model's side of `generateContent` and `countTokens`: deterministic answers from answers.ts
 * wrapped in Gemini's `GenerateContentResponse` shape (candidates, finishReason, usageMetadata,
 * modelVersion, responseId). Requests here are already parsed (validate.ts: lowerCamel names).
 *
 * Structured output (`generationConfig.responseMimeType: "application/json"`): the text part is
 * `JSON.stringify(sampleValue(schema, <the plain answer>))` (schema-sample.ts) for the
 * `responseJsonSchema` (plain JSON Schema) or else the `responseSchema` (Gemini's OpenAPI subset,
 * `OBJECT`, `STRING`, … in either case, `propertyOrdering` honoured), or the plain answer as a JSON
 * string when neither is given. It is measured as JSON (answers.ts: 4 characters a token), so
 * `maxOutputTokens` cuts it to its first `4 × maxOutputTokens` characters, finishReason
 * `MAX_TOKENS`. With `text/x.enum` and a schema, the text is the schema's value (an enum's first
 * member) as plain text. A schema under any other MIME type is ignored.
 *
 * Thinking models (thinking.ts) spend thought tokens first, out of `maxOutputTokens`: the answer
 * gets what is left, and none left means a candidate without text and `MAX_TOKENS`.
 * @module
 */
import { answer, countTokens, limitAnswer, type Measure, measureTokens } from "../../answers.ts";
import { sampleValue } from "../../schema-sample.ts";
import { isObject, responseId } from "./common.ts";
import { includeThoughts, thoughtTokens } from "./thinking.ts";
import type { CountTokensJson, FinishReasonJson, GeminiResponseJson } from "./wire.ts";

interface Turn {
  role: string;
  text: string;
}

function contentText(content: unknown): string {
  if (!isObject(content) || !Array.isArray(content.parts)) return "";
  return content.parts
    .map((p) => (isObject(p) && typeof p.text === "string" ? p.text : ""))
    .filter(Boolean)
    .join("\n");
}

function turns(req: Record<string, unknown>): Turn[] {
  const contents = Array.isArray(req.contents) ? req.contents : [];
  return contents.map((c) => ({
    role: isObject(c) && typeof c.role === "string" ? c.role : "",
    text: contentText(c),
  }));
}

/**
 * Every text a request carries: the system instruction first, then each content in order. These
 * are the "prompts" fault rules match, and what `promptTokenCount` counts.
 */
export function requestTexts(req: Record<string, unknown>): string[] {
  const inner = isObject(req.generateContentRequest) ? req.generateContentRequest : req;
  const system = contentText(inner.systemInstruction);
  return [
    ...(system ? [system] : []),
    ...turns(inner).map((t) => t.text),
    ...(inner !== req ? turns(req).map((t) => t.text) : []),
  ]
    .filter((t) => t !== "");
}

/** Proto3 JSON leaves out numbers that are zero; so does the real API (e.g. `candidatesTokenCount`). */
function nonZero(fields: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== 0));
}

/** The text a request's generation config asks for around the plain answer, and how it is measured. */
function shaped(
  config: Record<string, unknown>,
  plain: string,
): { text: string; measure: Measure } {
  const mime = config.responseMimeType;
  const schema = config.responseJsonSchema ?? config._responseJsonSchema ?? config.responseSchema;
  if (mime === "application/json") {
    const value = schema === undefined ? plain : sampleValue(schema, plain);
    return { text: JSON.stringify(value), measure: "json" };
  }
  if (mime === "text/x.enum" && schema !== undefined) {
    const value = sampleValue(schema, plain);
    return { text: typeof value === "string" ? value : JSON.stringify(value), measure: "words" };
  }
  return { text: plain, measure: "words" };
}

/** How a model answers beyond the request: how many tokens its dynamic thinking spends. */
export interface GenerateOptions {
  /** Thought tokens of default (dynamic) thinking; 0 when not given. */
  readonly thinking?: number;
}

/**
 * The `GenerateContentResponse` for a parsed request. The prompt is the last user turn's text;
 * the answer is shaped by the generation config (structured output, see the module comment);
 * thinking spends its tokens first, then `maxOutputTokens` cuts the answer to what is left
 * (finishReason `MAX_TOKENS`), a stop sequence ends it early (`STOP`), and `candidateCount`
 * repeats the candidate. `n` numbers the `responseId`. `reply` (a `reply` fault's text) then
 * replaces the text as is, the finish reason staying; `candidatesTokenCount` counts the text sent,
 * `thoughtsTokenCount` the thinking, and `totalTokenCount` both with the prompt.
 */
export function generateResponse(
  model: string,
  req: Record<string, unknown>,
  n: number,
  reply?: string,
  options: GenerateOptions = {},
): GeminiResponseJson {
  const all = turns(req);
  const prompt = [...all].reverse().find((t) => t.role === "user" || t.role === "")?.text ??
    all.at(-1)?.text ?? "";
  const config = isObject(req.generationConfig) ? req.generationConfig : {};
  const maxTokens = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
  const thoughts = thoughtTokens(model, config, options.thinking ?? 0);
  const result = answer(model, prompt, requestTexts(req));
  const { text: whole, measure } = shaped(config, result.text);
  const limited = limitAnswer(
    whole,
    measure,
    maxTokens === undefined ? undefined : maxTokens - thoughts,
  );
  let text = limited.text;
  let finishReason: FinishReasonJson = limited.finish === "length" ? "MAX_TOKENS" : "STOP";
  const stops = Array.isArray(config.stopSequences)
    ? (config.stopSequences as string[]).filter((s) => s !== "")
    : [];
  const cut = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
  if (Number.isFinite(cut)) {
    text = text.slice(0, cut);
    finishReason = "STOP";
  }
  if (reply !== undefined) text = reply;
  const outputTokens = measureTokens(text, measure);
  const count = typeof config.candidateCount === "number" ? config.candidateCount : 1;
  const parts: Array<{ text: string; thought?: boolean }> = [];
  // A thought summary comes first, marked `thought: true`, when asked for.
  if (thoughts > 0 && includeThoughts(config)) {
    parts.push({ text: "**Thinking it over**", thought: true });
  }
  if (text !== "") parts.push({ text });
  // A candidate with nothing to show has no parts at all, as the real API sends it.
  const content = parts.length ? { parts, role: "model" } : { role: "model" };
  const candidates = Array.from(
    { length: count },
    (_, index) => ({ content, finishReason, index }),
  );
  const usageMetadata: NonNullable<GeminiResponseJson["usageMetadata"]> = nonZero({
    promptTokenCount: result.inputTokens,
    candidatesTokenCount: outputTokens * count,
    totalTokenCount: result.inputTokens + (outputTokens + thoughts) * count,
    thoughtsTokenCount: thoughts * count,
  });
  if (result.inputTokens > 0) {
    usageMetadata.promptTokensDetails = [{ modality: "TEXT", tokenCount: result.inputTokens }];
  }
  return { candidates, usageMetadata, modelVersion: model, responseId: responseId(n) };
}

/** The `countTokens` answer: `{"totalTokens": N, "promptTokensDetails": […]}` (zero is left out). */
export function countTokensResponse(req: Record<string, unknown>): CountTokensJson {
  const total = requestTexts(req).reduce((sum, t) => sum + countTokens(t), 0);
  if (total === 0) return {};
  return { totalTokens: total, promptTokensDetails: [{ modality: "TEXT", tokenCount: total }] };
}
