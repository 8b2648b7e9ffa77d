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
 * @module
 */
import { answer, countTokens, limitAnswer, type Measure, measureTokens } from "../../answers.ts";
import { sampleValue } from "../../schema-sample.ts";
import { isObject, responseId } from "./common.ts";

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
function shaped(config: Record<string, unknown>, plain: string): { text: string; measure: Measure } {
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

/**
 * The `GenerateContentResponse` for a parsed request. The prompt is the last user turn's text;
 * the answer is shaped by the generation config (structured output, see the module comment);
 * `maxOutputTokens` cuts it (finishReason `MAX_TOKENS`), a stop sequence ends it early (`STOP`),
 * and `candidateCount` repeats the candidate. `n` numbers the `responseId`. `reply` (a `reply`
 * fault's text) then replaces the text as is, the finish reason staying; `candidatesTokenCount`
 * counts the text sent.
 */
export function generateResponse(
  model: string,
  req: Record<string, unknown>,
  n: number,
  reply?: string,
): Record<string, unknown> {
  const all = turns(req);
  const prompt = [...all].reverse().find((t) => t.role === "user" || t.role === "")?.text ??
    all.at(-1)?.text ?? "";
  const config = isObject(req.generationConfig) ? req.generationConfig : {};
  const maxTokens = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
  const result = answer(model, prompt, requestTexts(req));
  const { text: whole, measure } = shaped(config, result.text);
  const limited = limitAnswer(whole, measure, maxTokens);
  let text = limited.text;
  let finishReason = limited.finish === "length" ? "MAX_TOKENS" : "STOP";
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
  // A candidate whose text is empty has no parts at all, as the real API sends it.
  const content = text === "" ? { role: "model" } : { parts: [{ text }], role: "model" };
  const candidates = Array.from(
    { length: count },
    (_, index) => ({ content, finishReason, index }),
  );
  const usageMetadata: Record<string, unknown> = nonZero({
    promptTokenCount: result.inputTokens,
    candidatesTokenCount: outputTokens * count,
    totalTokenCount: result.inputTokens + outputTokens * count,
  });
  if (result.inputTokens > 0) {
    usageMetadata.promptTokensDetails = [{ modality: "TEXT", tokenCount: result.inputTokens }];
  }
  return { candidates, usageMetadata, modelVersion: model, responseId: responseId(n) };
}

/** The `countTokens` answer: `{"totalTokens": N, "promptTokensDetails": […]}` (zero is left out). */
export function countTokensResponse(req: Record<string, unknown>): Record<string, unknown> {
  const total = requestTexts(req).reduce((sum, t) => sum + countTokens(t), 0);
  if (total === 0) return {};
  return { totalTokens: total, promptTokensDetails: [{ modality: "TEXT", tokenCount: total }] };
}
