/**
 * The model's side of `generateContent` and `countTokens`: deterministic answers from answers.ts
 * wrapped in Gemini's `GenerateContentResponse` shape (candidates, finishReason, usageMetadata,
 * modelVersion, responseId). Requests here are already parsed (validate.ts: lowerCamel names).
 * @module
 */
import { answer, countTokens } from "../../answers.ts";
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

/**
 * The `GenerateContentResponse` for a parsed request. The prompt is the last user turn's text;
 * `maxOutputTokens` cuts the answer (finishReason `MAX_TOKENS`), a stop sequence ends it early
 * (`STOP`), and `candidateCount` repeats the candidate. `n` numbers the `responseId`.
 */
export function generateResponse(
  model: string,
  req: Record<string, unknown>,
  n: number,
): Record<string, unknown> {
  const all = turns(req);
  const prompt = [...all].reverse().find((t) => t.role === "user" || t.role === "")?.text ??
    all.at(-1)?.text ?? "";
  const config = isObject(req.generationConfig) ? req.generationConfig : {};
  const maxTokens = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
  const result = answer(model, prompt, requestTexts(req), maxTokens);
  let text = result.text;
  let finishReason = result.finish === "length" ? "MAX_TOKENS" : "STOP";
  const stops = Array.isArray(config.stopSequences)
    ? (config.stopSequences as string[]).filter((s) => s !== "")
    : [];
  const cut = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
  if (Number.isFinite(cut)) {
    text = text.slice(0, cut);
    finishReason = "STOP";
  }
  const outputTokens = countTokens(text);
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
