/**
 * Thinking, as Gemini's thinking models spend it: thought tokens come out of `maxOutputTokens`
 * before the answer does, are reported apart in `usageMetadata.thoughtsTokenCount` (not in
 * `candidatesTokenCount`; `totalTokenCount` counts both), and a budget spent on thinking alone
 * leaves a candidate with no text and `finishReason: "MAX_TOKENS"`.
 *
 * Which known models think unless told not to (Gemini thinking guide): the 2.5 models and later,
 * except Flash-Lite, which thinks only when given a budget; the 2.0 models never think. 2.5 Pro
 * and the Gemini 3 Pro models cannot stop thinking (`thinkingBudget: 0` is refused). Gemini 3
 * models take `thinkingLevel`; the 2.5 models take only `thinkingBudget`; a request may set one of
 * the two, not both. unverified: Flash-Lite's default (third-party reports disagree) and 2.5 Pro's
 * refusal of budget 0 come from the guide's model table as remembered, not a source read here;
 * the per-model budget ranges (e.g. Flash-Lite's minimum of 512) are not checked.
 *
 * How much the emulator thinks (a fixed, documented choice, as the real amount depends on the
 * prompt): `dynamic` tokens by default (the `thinkingTokens` limit, 2 unless set, so ordinary
 * tests keep their whole `maxOutputTokens`), exactly `thinkingBudget` when that is > 0, half of
 * `dynamic` (rounded up) for `thinkingLevel` `minimal` or `low`. Always within `maxOutputTokens`.
 * @module
 */
import { camel, isObject } from "./common.ts";

/** Whether a known model thinks when the request says nothing about thinking. */
export function thinksByDefault(model: string): boolean {
  if (model.startsWith("gemini-2.0")) return false;
  // unverified: that the `-latest` aliases follow the models they currently name.
  return !/flash-lite/.test(model);
}

/** Whether a model can think at all (every known model but the 2.0 ones). */
function canThink(model: string): boolean {
  return !model.startsWith("gemini-2.0");
}

/** Models that always think: `thinkingBudget: 0` is refused. */
function alwaysThinks(model: string): boolean {
  return /^gemini-(2\.5-pro|3(\.\d+)?-pro|pro-latest)/.test(model);
}

/** Gemini 3 models (and the aliases) take `thinkingLevel`. */
function takesLevel(model: string): boolean {
  return /^gemini-(3|flash-latest|flash-lite-latest|pro-latest)/.test(model);
}

/**
 * The request's `generationConfig.thinkingConfig` in lowerCamel names (proto JSON takes the
 * snake_case names too, e.g. `thinking_budget`), or an empty one.
 */
function thinkingConfig(config: Record<string, unknown>): Record<string, unknown> {
  if (!isObject(config.thinkingConfig)) return {};
  return Object.fromEntries(Object.entries(config.thinkingConfig).map(([k, v]) => [camel(k), v]));
}

/**
 * What the API refuses in a thinking config, as 400 message lines. unverified: the wording of
 * each message (the published definitions give the fields, the thinking guide the rules).
 */
export function thinkingProblems(model: string, config: Record<string, unknown>): string[] {
  const { thinkingBudget: budget, thinkingLevel: level } = thinkingConfig(config);
  const out: string[] = [];
  if (budget !== undefined && level !== undefined) {
    out.push("Only one of thinking_budget and thinking_level may be set.");
  }
  if (level !== undefined && !takesLevel(model)) {
    out.push("Thinking level is not supported for this model.");
  }
  if (typeof budget === "number" && budget !== 0 && budget !== -1 && !canThink(model)) {
    out.push("Thinking is not supported for this model.");
  }
  if (budget === 0 && alwaysThinks(model)) {
    out.push("Budget 0 is invalid. This model only works in thinking mode.");
  }
  return out;
}

/** Thought tokens a request spends before its answer, at most `maxOutputTokens` when given. */
export function thoughtTokens(
  model: string,
  config: Record<string, unknown>,
  dynamic: number,
): number {
  const { thinkingBudget: budget, thinkingLevel: level } = thinkingConfig(config);
  let wanted: number;
  if (typeof budget === "number" && budget > 0) wanted = canThink(model) ? budget : 0;
  else if (budget === 0) wanted = 0;
  else if (level === "MINIMAL" || level === "LOW" || level === "minimal" || level === "low") {
    wanted = Math.ceil(dynamic / 2);
  } else if (budget === -1 || level !== undefined) wanted = canThink(model) ? dynamic : 0;
  else wanted = thinksByDefault(model) ? dynamic : 0;
  const max = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
  return max === undefined ? wanted : Math.min(wanted, max);
}

/** Whether the request asks for thought summaries (`includeThoughts`). */
export function includeThoughts(config: Record<string, unknown>): boolean {
  return thinkingConfig(config).includeThoughts === true;
}
