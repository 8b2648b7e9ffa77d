/**
 * The Responses API as far as a batch runner needs it: `POST /v1/responses` (also a batch
 * endpoint) and `POST /v1/responses/input_tokens`, which counts a Responses-shaped request's
 * input with the emulator's documented count (one token per word of instructions and input).
 * @module
 */
import type { Response } from "openai/resources/responses/responses";
import { countTokens } from "../../answers.ts";
import { type EmulatorContext, HttpError } from "../../server.ts";
import { generate, type OutputFormat, type ReplyText } from "./chat.ts";
import {
  badValue,
  checkArray,
  checkBoolean,
  checkMetadata,
  checkNumber,
  checkObject,
  checkString,
  invalid,
  isObject,
  missing,
  unrecognized,
  wrongType,
} from "./errors.ts";
import { nextId } from "./ids.ts";
import { modelTraits } from "./models.ts";
import { checkStrictSchema } from "./schema.ts";

/** Top-level fields of a Responses request. */
const RESPONSE_PARAMS = new Set([
  "model",
  "input",
  "instructions",
  "max_output_tokens",
  "temperature",
  "top_p",
  "text",
  "tools",
  "tool_choice",
  "metadata",
  "store",
  "stream",
  "stream_options",
  "reasoning",
  "parallel_tool_calls",
  "previous_response_id",
  "conversation",
  "truncation",
  "include",
  "user",
  "service_tier",
  "background",
  "prompt",
  "prompt_cache_key",
  "prompt_cache_retention",
  "safety_identifier",
  "top_logprobs",
  "max_tool_calls",
]);

/** Fields `POST /v1/responses/input_tokens` accepts. */
const INPUT_TOKEN_PARAMS = new Set([
  "model",
  "input",
  "instructions",
  "tools",
  "tool_choice",
  "text",
  "reasoning",
  "conversation",
  "previous_response_id",
  "parallel_tool_calls",
  "truncation",
]);

const INPUT_ROLES = ["user", "assistant", "system", "developer"];
const PART_TYPES = [
  "input_text",
  "input_image",
  "input_file",
  "input_audio",
  "output_text",
  "refusal",
];

function partText(part: Record<string, unknown>): string {
  if (typeof part.text === "string") return part.text;
  if (typeof part.refusal === "string") return part.refusal;
  return "";
}

/** Validates `input` (a string or a list of items) and returns its texts and the prompt answered. */
function checkInput(value: unknown): { texts: string[]; prompt: string } {
  if (typeof value === "string") return { texts: value ? [value] : [], prompt: value };
  const items = checkArray(value, "input");
  const texts: string[] = [];
  let prompt: string | undefined;
  items.forEach((item, i) => {
    const at = `input[${i}]`;
    const it = checkObject(item, at);
    if (it.type !== undefined && it.type !== "message") return; // tool outputs, reasoning items, references
    if (it.role === undefined) throw missing(`${at}.role`);
    if (!INPUT_ROLES.includes(it.role as string)) {
      throw badValue(`${at}.role`, it.role, INPUT_ROLES);
    }
    if (it.content === undefined) throw missing(`${at}.content`);
    let text: string;
    if (typeof it.content === "string") text = it.content;
    else {
      const parts = checkArray(it.content, `${at}.content`);
      parts.forEach((p, j) => {
        const part = checkObject(p, `${at}.content[${j}]`);
        if (part.type === undefined) throw missing(`${at}.content[${j}].type`);
        if (!PART_TYPES.includes(part.type as string)) {
          throw badValue(`${at}.content[${j}].type`, part.type, PART_TYPES);
        }
        if (
          (part.type === "input_text" || part.type === "output_text") && part.text === undefined
        ) {
          throw missing(`${at}.content[${j}].text`);
        }
        if (part.text !== undefined) checkString(part.text, `${at}.content[${j}].text`);
      });
      text = parts.map((p) => partText(p as Record<string, unknown>)).filter(Boolean).join("\n");
    }
    if (text) texts.push(text);
    if (it.role === "user") prompt = text;
  });
  return { texts, prompt: prompt ?? texts.at(-1) ?? "" };
}

/** The prompt texts of a Responses body, without validating it (for fault rules). */
export function responsePrompts(body: unknown): string[] {
  if (!isObject(body)) return [];
  const out: string[] = [];
  if (typeof body.instructions === "string") out.push(body.instructions);
  try {
    out.push(...checkInput(body.input).texts);
  } catch { /* not a valid input: no prompts */ }
  return out;
}

function checkTextFormat(value: unknown): OutputFormat {
  if (value === undefined || value === null) return { type: "text" };
  const text = checkObject(value, "text");
  if (text.format === undefined || text.format === null) return { type: "text" };
  const f = checkObject(text.format, "text.format");
  if (f.type === undefined) throw missing("text.format.type");
  if (f.type === "text" || f.type === "json_object") return { type: f.type };
  if (f.type !== "json_schema") {
    throw badValue("text.format.type", f.type, ["text", "json_schema", "json_object"]);
  }
  if (f.name === undefined) throw missing("text.format.name");
  const name = checkString(f.name, "text.format.name", 64);
  if (f.schema === undefined) throw missing("text.format.schema");
  const schema = checkObject(f.schema, "text.format.schema");
  if (f.strict !== undefined && f.strict !== null && checkBoolean(f.strict, "text.format.strict")) {
    checkStrictSchema(schema, name, "text.format.schema");
  }
  return { type: "json_schema", name, schema };
}

/** Checks the model of a Responses-shaped body (missing, type, known). */
function checkModel(ctx: EmulatorContext, value: unknown, knownModels: readonly string[]): string {
  const model = checkString(value, "model");
  if (!ctx.acceptsModel(model, knownModels)) {
    throw new HttpError(
      404,
      `The model '${model}' does not exist or you do not have access to it.`,
      "model_not_found",
      {
        param: "model",
      },
    );
  }
  return model;
}

/**
 * Validates a `POST /v1/responses` body and answers it with a `response` object. `reply` (a
 * `reply` fault's text) replaces the output text, the status and usage staying as generated.
 */
export function responseObject(
  ctx: EmulatorContext,
  body: unknown,
  knownModels: readonly string[],
  reply?: ReplyText,
): Record<string, unknown> {
  if (!isObject(body)) throw invalid("The request body must be a JSON object.", null);
  for (const key of Object.keys(body)) if (!RESPONSE_PARAMS.has(key)) throw unrecognized(key);
  if (body.model === undefined) throw missing("model");
  if (
    body.input === undefined && body.previous_response_id === undefined &&
    body.conversation === undefined
  ) {
    throw missing("input");
  }
  const { texts, prompt } = body.input === undefined
    ? { texts: [], prompt: "" }
    : checkInput(body.input);
  const instructions = body.instructions === undefined || body.instructions === null
    ? null
    : checkString(body.instructions, "instructions");
  const num = (name: string, kind: "integer" | "decimal", min?: number, max?: number) =>
    body[name] === undefined || body[name] === null
      ? undefined
      : checkNumber(body[name], name, kind, min, max);
  const maxOutput = num("max_output_tokens", "integer", 16);
  const temperature = num("temperature", "decimal", 0, 2);
  const topP = num("top_p", "decimal", 0, 1);
  if (body.metadata !== undefined) checkMetadata(body.metadata);
  if (body.stream === true) {
    throw invalid("The emulator answers Responses requests without streaming.", "stream");
  }
  const format = checkTextFormat(body.text);
  const model = checkModel(ctx, body.model, knownModels);
  const traits = modelTraits(model);
  if (traits?.reasoning) {
    for (const [name, value] of [["temperature", temperature], ["top_p", topP]] as const) {
      if (value !== undefined && value !== 1) {
        throw invalid(
          `Unsupported parameter: '${name}' is not supported with this model.`,
          name,
          "unsupported_parameter",
        );
      }
    }
  }
  if (traits && maxOutput !== undefined && maxOutput > traits.maxOutput) {
    throw invalid(
      `max_output_tokens is too large: ${maxOutput}. This model supports at most ${traits.maxOutput} output tokens, whereas you provided ${maxOutput}.`,
      "max_output_tokens",
      "invalid_value",
    );
  }
  const inputs = instructions ? [instructions, ...texts] : texts;
  const g = generate(
    model,
    prompt,
    inputs,
    format,
    [],
    maxOutput,
    reply,
    traits?.reasoning === true,
  );
  return {
    id: nextId(ctx, "resp", "resp_", 48).id,
    object: "response",
    // The SDK types it as required; null is "the implicit Standard program" (SDK doc comment).
    access_programs: null,
    created_at: Math.floor(ctx.clock.now() / 1000),
    status: g.finish === "length" ? "incomplete" : "completed",
    background: false,
    error: null,
    incomplete_details: g.finish === "length" ? { reason: "max_output_tokens" } : null,
    instructions,
    max_output_tokens: maxOutput ?? null,
    model,
    output: [
      // A reasoning model's output starts with its reasoning item (no summary unless asked for).
      ...(g.reasoningTokens > 0
        ? [{ type: "reasoning" as const, id: nextId(ctx, "rs", "rs_", 48).id, summary: [] }]
        : []),
      {
        type: "message",
        id: nextId(ctx, "msg", "msg_", 48).id,
        status: g.finish === "length" ? "incomplete" : "completed",
        role: "assistant",
        content: [{ type: "output_text", text: g.text, annotations: [], logprobs: [] }],
      },
    ],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: traits?.reasoning ? "medium" : null, summary: null },
    service_tier: "default",
    temperature: temperature ?? 1,
    text: {
      format: format.type === "json_schema"
        ? {
          type: "json_schema",
          name: format.name,
          schema: format.schema as Record<string, unknown>,
          strict: true,
        }
        : { type: format.type },
      verbosity: "medium",
    },
    tool_choice: "auto",
    tools: [],
    top_p: topP ?? 1,
    truncation: "disabled",
    usage: {
      input_tokens: g.inputTokens,
      // Both required by the definition's ResponseUsage and the SDK's type.
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: g.outputTokens,
      output_tokens_details: { reasoning_tokens: g.reasoningTokens },
      total_tokens: g.inputTokens + g.outputTokens,
    },
    // The SDK types `user` as an optional string (deprecated): absent rather than null.
    metadata: (body.metadata ?? {}) as Record<string, string>,
  } satisfies Omit<Response, "output_text">; // `output_text` is the SDK's own, built on the client.
}

/** Answers `POST /v1/responses/input_tokens`: `{"object":"response.input_tokens","input_tokens":N}`. */
export function inputTokens(
  ctx: EmulatorContext,
  body: unknown,
  knownModels: readonly string[],
): Record<string, unknown> {
  if (!isObject(body)) throw invalid("The request body must be a JSON object.", null);
  for (const key of Object.keys(body)) if (!INPUT_TOKEN_PARAMS.has(key)) throw unrecognized(key);
  if (body.model !== undefined && body.model !== null) checkModel(ctx, body.model, knownModels);
  let total = 0;
  if (body.instructions !== undefined && body.instructions !== null) {
    total += countTokens(checkString(body.instructions, "instructions"));
  }
  if (body.input !== undefined && body.input !== null) {
    if (typeof body.input !== "string" && !Array.isArray(body.input)) {
      throw wrongType("input", "one of a string or an array", body.input);
    }
    total += checkInput(body.input).texts.reduce((sum, t) => sum + countTokens(t), 0);
  }
  if (body.text !== undefined && body.text !== null) checkTextFormat(body.text);
  return { object: "response.input_tokens", input_tokens: total };
}
