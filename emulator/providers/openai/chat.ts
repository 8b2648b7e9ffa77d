/**
 * Chat Completions (`POST /v1/chat/completions`): validation with the real API's messages,
 * params and codes, the deterministic answer (`answers.ts`) wrapped in a `chat.completion`, and
 * its server-sent-events form for `stream: true`. OpenRouter speaks the same protocol, so the
 * builder is exported for its module to reuse ({@link chatCompletion}, {@link ChatOptions}).
 * @module
 */
import type { ChatCompletion, ChatCompletionChunk } from "openai/resources/chat/completions";
import type { CompletionUsage } from "openai/resources/completions";
import {
  answer,
  countTokens,
  hexId,
  limitAnswer,
  type Measure,
  measureTokens,
} from "../../answers.ts";
import { sampleValue } from "../../schema-sample.ts";
import { type EmulatorContext, HttpError, type Reply } from "../../server.ts";
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

/** How a host API (OpenAI itself, OpenRouter) tunes the shared chat builder. */
export interface ChatOptions {
  /** Top-level request fields accepted besides OpenAI's own (OpenRouter: `provider`, `models`, …). */
  extraParams?: readonly string[];
  /** Prefix of completion ids (default `chatcmpl-`; OpenRouter uses `gen-`). */
  idPrefix?: string;
  /** What a model allows (default: OpenAI's table; unknown ids have no cap and are not reasoning models). */
  traits?: (model: string) => { maxOutput: number; reasoning: boolean } | undefined;
  /** Inside a batch: `stream` is ignored, the answer is always a whole completion. */
  batch?: boolean;
  /** A `reply` fault's text: the answer content instead of the generated one (see {@link generate}). */
  reply?: ReplyText;
}

/**
 * A `reply` fault's text, or a function asked for it once the request proved valid (a batch line
 * asks the fault rules only then); undefined means no replacement.
 */
export type ReplyText = string | (() => string | undefined);

/** Top-level fields of a Chat Completions request. */
const CHAT_PARAMS = new Set([
  "model",
  "messages",
  "audio",
  "frequency_penalty",
  "function_call",
  "functions",
  "logit_bias",
  "logprobs",
  "max_completion_tokens",
  "max_tokens",
  "metadata",
  "modalities",
  "n",
  "parallel_tool_calls",
  "prediction",
  "presence_penalty",
  "prompt_cache_key",
  "prompt_cache_retention",
  "reasoning_effort",
  "response_format",
  "safety_identifier",
  "seed",
  "service_tier",
  "stop",
  "store",
  "stream",
  "stream_options",
  "temperature",
  "tool_choice",
  "tools",
  "top_logprobs",
  "top_p",
  "user",
  "verbosity",
  "web_search_options",
]);

/**
 * Parameters a reasoning model refuses with `unsupported_parameter`, whatever their value: `stop`
 * (the OpenAPI definition's StopConfiguration: "Not supported with latest reasoning models o3
 * and o4-mini"), and the penalties, log probabilities and `logit_bias` (observed refused by o1
 * and o3-mini, community.openai.com t/1110750). unverified: the same for every reasoning model
 * (gpt-5 included), and the message text for each parameter (the shape of the `max_tokens` one).
 */
const REASONING_UNSUPPORTED = [
  "stop",
  "presence_penalty",
  "frequency_penalty",
  "logprobs",
  "top_logprobs",
  "logit_bias",
];

const ROLES = ["system", "assistant", "user", "function", "tool", "developer"];
const PART_TYPES: Record<string, readonly string[]> = {
  system: ["text"],
  developer: ["text"],
  user: ["text", "image_url", "input_audio", "file"],
  assistant: ["text", "refusal"],
  tool: ["text"],
  function: ["text"],
};

/** The answer format a request asks for. */
export type OutputFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: unknown };

/** A validated chat request, reduced to what the answer depends on. */
export interface ChatRequest {
  model: string;
  /** Every input text (system prompt and all messages), for the prompt token count. */
  texts: string[];
  /** The text answered: the last user message. */
  prompt: string;
  maxTokens?: number;
  n: number;
  stop: string[];
  format: OutputFormat;
  stream: boolean;
  includeUsage: boolean;
  /** A reasoning model: it spends reasoning tokens before answering ({@link reasoningTokens}). */
  reasoning: boolean;
}

/** The text of a message's content (string or parts), or "" when it has none. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .filter((p) => isObject(p) && typeof p.text === "string")
      .map((p) => (p as { text: string }).text)
      .join("\n");
  }
  return "";
}

/** The prompt texts of a chat body, without validating it (for fault rules). */
export function chatPrompts(body: unknown): string[] {
  if (!isObject(body) || !Array.isArray(body.messages)) return [];
  return body.messages.filter(isObject).map((m) => contentText(m.content)).filter(Boolean);
}

function checkParts(parts: unknown[], role: string, at: string): void {
  parts.forEach((part, j) => {
    const p = checkObject(part, `${at}[${j}]`);
    if (p.type === undefined) throw missing(`${at}[${j}].type`);
    const allowed = PART_TYPES[role] ?? ["text"];
    if (!allowed.includes(p.type as string)) throw badValue(`${at}[${j}].type`, p.type, allowed);
    const field = p.type === "text"
      ? "text"
      : p.type === "refusal"
      ? "refusal"
      : (p.type as string);
    if (p[field] === undefined) throw missing(`${at}[${j}].${field}`);
    if (field === "text" || field === "refusal") checkString(p[field], `${at}[${j}].${field}`);
    else if (p.type === "image_url") {
      const image = checkObject(p.image_url, `${at}[${j}].image_url`);
      if (image.url === undefined) throw missing(`${at}[${j}].image_url.url`);
      checkString(image.url, `${at}[${j}].image_url.url`);
    } else checkObject(p[field], `${at}[${j}].${field}`);
  });
}

function checkMessages(value: unknown): { texts: string[]; prompt: string; all: string } {
  const messages = checkArray(value, "messages", 1);
  const texts: string[] = [];
  let prompt: string | undefined;
  messages.forEach((message, i) => {
    const at = `messages[${i}]`;
    const m = checkObject(message, at);
    if (m.role === undefined) throw missing(`${at}.role`);
    if (typeof m.role !== "string" || !ROLES.includes(m.role)) {
      throw badValue(`${at}.role`, m.role, ROLES);
    }
    const role = m.role;
    const content = m.content;
    const optional = role === "assistant" &&
      (m.tool_calls !== undefined || m.function_call !== undefined || m.refusal !== undefined);
    if (content === undefined || content === null) {
      if (!optional) throw missing(`${at}.content`);
    } else if (typeof content !== "string") {
      if (!Array.isArray(content)) {
        throw wrongType(`${at}.content`, "one of a string or an array", content);
      }
      checkArray(content, `${at}.content`, role === "assistant" ? 0 : 1);
      checkParts(content, role, `${at}.content`);
    }
    if (role === "tool" && m.tool_call_id === undefined) throw missing(`${at}.tool_call_id`);
    if (role === "function" && m.name === undefined) throw missing(`${at}.name`);
    if (m.name !== undefined) checkString(m.name, `${at}.name`);
    const text = contentText(content);
    if (text) texts.push(text);
    if (role === "user") prompt = text;
  });
  return { texts, prompt: prompt ?? texts.at(-1) ?? "", all: texts.join("\n") };
}

function checkFormat(value: unknown, allText: string): OutputFormat {
  if (value === undefined || value === null) return { type: "text" };
  const f = checkObject(value, "response_format");
  if (f.type === undefined) throw missing("response_format.type");
  if (f.type === "text") return { type: "text" };
  if (f.type === "json_object") {
    if (!/json/i.test(allText)) {
      throw invalid(
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
        "messages",
      );
    }
    return { type: "json_object" };
  }
  if (f.type === "json_schema") {
    if (f.json_schema === undefined) throw missing("response_format.json_schema");
    const js = checkObject(f.json_schema, "response_format.json_schema");
    if (js.name === undefined) throw missing("response_format.json_schema.name");
    const name = checkString(js.name, "response_format.json_schema.name");
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) {
      throw invalid(
        `Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
        "response_format.json_schema.name",
        "invalid_value",
      );
    }
    const schema = js.schema === undefined
      ? { type: "object" }
      : checkObject(js.schema, "response_format.json_schema.schema");
    if (
      js.strict !== undefined && js.strict !== null &&
      checkBoolean(js.strict, "response_format.json_schema.strict")
    ) {
      checkStrictSchema(schema, name, "response_format");
    }
    return { type: "json_schema", name, schema };
  }
  throw badValue("response_format.type", f.type, ["json_object", "json_schema", "text"]);
}

function checkStop(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) throw wrongType("stop", "one of a string or an array", value);
  checkArray(value, "stop", undefined, 4);
  return value.map((s, i) => checkString(s, `stop[${i}]`));
}

/**
 * Validates a Chat Completions body the way the API does: unknown fields, the model, messages
 * (roles, content, parts), numeric ranges, `stop`, `response_format` and model-specific rules.
 * Throws {@link HttpError} (400, or 404 `model_not_found`).
 */
export function parseChatRequest(
  ctx: EmulatorContext,
  body: unknown,
  knownModels: readonly string[],
  options: ChatOptions = {},
): ChatRequest {
  if (!isObject(body)) throw invalid("The request body must be a JSON object.", null);
  const extra = new Set(options.extraParams ?? []);
  for (const key of Object.keys(body)) {
    if (!CHAT_PARAMS.has(key) && !extra.has(key)) throw unrecognized(key);
  }
  if (body.model === undefined || body.model === null || body.model === "") {
    throw invalid("you must provide a model parameter", null);
  }
  const model = checkString(body.model, "model");
  if (body.messages === undefined) throw missing("messages");
  const { texts, prompt, all } = checkMessages(body.messages);

  const num = (name: string, kind: "integer" | "decimal", min?: number, max?: number) =>
    body[name] === undefined || body[name] === null
      ? undefined
      : checkNumber(body[name], name, kind, min, max);
  const temperature = num("temperature", "decimal", 0, 2);
  const topP = num("top_p", "decimal", 0, 1);
  num("frequency_penalty", "decimal", -2, 2);
  num("presence_penalty", "decimal", -2, 2);
  const n = num("n", "integer", 1, 128) ?? 1;
  num("seed", "integer");
  const maxTokens = num("max_tokens", "integer", 1);
  const maxCompletion = num("max_completion_tokens", "integer", 1);
  num("top_logprobs", "integer", 0, 20);
  if (body.logprobs !== undefined && body.logprobs !== null) {
    checkBoolean(body.logprobs, "logprobs");
  }
  if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.logprobs !== true) {
    throw invalid(
      "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
      "top_logprobs",
    );
  }
  if (body.store !== undefined && body.store !== null) checkBoolean(body.store, "store");
  if (body.user !== undefined) checkString(body.user, "user");
  if (body.metadata !== undefined) checkMetadata(body.metadata);
  if (body.service_tier !== undefined && body.service_tier !== null) {
    const tiers = ["auto", "default", "flex", "scale", "priority"];
    if (!tiers.includes(body.service_tier as string)) {
      throw badValue("service_tier", body.service_tier, tiers);
    }
  }
  if (body.tools !== undefined) {
    checkArray(body.tools, "tools", undefined, 128).forEach((tool, i) => {
      const t = checkObject(tool, `tools[${i}]`);
      if (t.type === undefined) throw missing(`tools[${i}].type`);
      if (t.type !== "function" && t.type !== "custom") {
        throw badValue(`tools[${i}].type`, t.type, ["function", "custom"]);
      }
      const fn = checkObject(t[t.type], `tools[${i}].${t.type}`);
      if (fn.name === undefined) throw missing(`tools[${i}].${t.type}.name`);
      if (!/^[a-zA-Z0-9_-]{1,64}$/.test(checkString(fn.name, `tools[${i}].${t.type}.name`))) {
        throw invalid(
          `Invalid 'tools[${i}].${t.type}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
          `tools[${i}].${t.type}.name`,
          "invalid_value",
        );
      }
    });
  }
  const stop = checkStop(body.stop);
  const format = checkFormat(body.response_format, all);
  const stream = !options.batch && body.stream !== undefined && body.stream !== null &&
    checkBoolean(body.stream, "stream");
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null && !options.batch) {
    if (!stream) {
      throw invalid(
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        "stream_options",
      );
    }
    const so = checkObject(body.stream_options, "stream_options");
    if (so.include_usage !== undefined) {
      includeUsage = checkBoolean(so.include_usage, "stream_options.include_usage");
    }
  }

  if (!ctx.acceptsModel(model, knownModels)) {
    throw new HttpError(
      404,
      `The model \`${model}\` does not exist or you do not have access to it.`,
      "model_not_found",
    );
  }
  const traits = (options.traits ?? modelTraits)(model);
  if (traits?.reasoning) {
    if (maxTokens !== undefined) {
      throw invalid(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        "max_tokens",
        "unsupported_parameter",
      );
    }
    for (const [name, value] of [["temperature", temperature], ["top_p", topP]] as const) {
      if (value !== undefined && value !== 1) {
        throw invalid(
          `Unsupported value: '${name}' does not support ${value} with this model. Only the default (1) value is supported.`,
          name,
          "unsupported_value",
        );
      }
    }
    for (const name of REASONING_UNSUPPORTED) {
      if (body[name] !== undefined && body[name] !== null) {
        throw invalid(
          `Unsupported parameter: '${name}' is not supported with this model.`,
          name,
          "unsupported_parameter",
        );
      }
    }
  } else if (body.reasoning_effort !== undefined && body.reasoning_effort !== null && traits) {
    throw invalid(
      "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
      "reasoning_effort",
      "unsupported_parameter",
    );
  }
  const limit = maxCompletion ?? maxTokens;
  const limitName = maxCompletion !== undefined ? "max_completion_tokens" : "max_tokens";
  if (traits && limit !== undefined && limit > traits.maxOutput) {
    throw invalid(
      `${limitName} is too large: ${limit}. This model supports at most ${traits.maxOutput} completion tokens, whereas you provided ${limit}.`,
      limitName,
      "invalid_value",
    );
  }
  return {
    model,
    texts,
    prompt,
    maxTokens: limit,
    n,
    stop,
    format,
    stream,
    includeUsage,
    reasoning: traits?.reasoning === true,
  };
}

/** Reasoning tokens a reasoning model spends per word of the prompt it answers. */
export const REASONING_TOKENS_PER_WORD = 16;

/**
 * The emulator's deterministic reasoning: {@link REASONING_TOKENS_PER_WORD} tokens per word of
 * the answered prompt (at least one word's worth), so a test picks a `max_tokens` below or above
 * it knowingly ("first prompt": 32).
 */
export function reasoningTokens(prompt: string): number {
  return REASONING_TOKENS_PER_WORD * Math.max(1, countTokens(prompt));
}

/** What {@link generate} produced. `outputTokens` is billed output: answer and reasoning. */
export interface Generated {
  text: string;
  finish: "stop" | "length";
  inputTokens: number;
  outputTokens: number;
  /** The part of `outputTokens` spent reasoning (0 for other models). */
  reasoningTokens: number;
}

/**
 * The generated text of a request: the deterministic answer, shaped by format, `stop` and the
 * token cap. A JSON format (`json_object`: `{"answer": <answer>}`; `json_schema`: a value of the
 * schema, see schema-sample.ts) is serialised compactly and measured as JSON (answers.ts: 4
 * characters a token), so `max_tokens` cuts it into unparseable JSON with finish `length`. A
 * reasoning model first spends {@link reasoningTokens}, counted in the output and against the
 * cap: when they reach the cap, the answer is empty with finish `length`, as the real API
 * answers. A `reply` (fault) replaces the text as is, after the finish reason was decided; its
 * tokens are counted by the same measure. Called only for a valid request.
 */
export function generate(
  model: string,
  prompt: string,
  texts: readonly string[],
  format: OutputFormat,
  stop: readonly string[],
  maxTokens: number | undefined,
  reply?: ReplyText,
  reasoning = false,
): Generated {
  const base = answer(model, prompt, texts);
  const thought = reasoning ? reasoningTokens(prompt) : 0;
  const replaced = () => (typeof reply === "function" ? reply() : reply);
  const measure: Measure = format.type === "text" ? "words" : "json";
  let text = format.type === "json_object"
    ? JSON.stringify({ answer: base.text })
    : format.type === "json_schema"
    ? JSON.stringify(sampleValue(format.schema, base.text))
    : base.text;
  const cuts = stop.map((s) => (s ? text.indexOf(s) : -1)).filter((i) => i >= 0);
  if (cuts.length) text = text.slice(0, Math.min(...cuts));
  if (maxTokens !== undefined && thought >= maxTokens) {
    const out = replaced() ?? "";
    return {
      text: out,
      finish: "length",
      inputTokens: base.inputTokens,
      outputTokens: maxTokens + measureTokens(out, measure),
      reasoningTokens: maxTokens,
    };
  }
  const limited = limitAnswer(
    text,
    measure,
    maxTokens === undefined ? undefined : maxTokens - thought,
  );
  const out = replaced() ?? limited.text;
  return {
    text: out,
    finish: limited.finish,
    inputTokens: base.inputTokens,
    outputTokens: thought + measureTokens(out, measure),
    reasoningTokens: thought,
  };
}

/** A short fingerprint of the serving configuration, stable per model. */
function fingerprint(model: string): string {
  let h = 0;
  for (const c of model) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `fp_${hexId(h, 10)}`;
}

/** Builds the `chat.completion` object answering a validated request. */
export function buildChatCompletion(
  ctx: EmulatorContext,
  req: ChatRequest,
  options: ChatOptions = {},
): Record<string, unknown> {
  const g = generate(
    req.model,
    req.prompt,
    req.texts,
    req.format,
    req.stop,
    req.maxTokens,
    options.reply,
    req.reasoning,
  );
  const choices = Array.from({ length: req.n }, (_, index) => ({
    index,
    message: { role: "assistant" as const, content: g.text, refusal: null, annotations: [] },
    logprobs: null,
    finish_reason: g.finish,
  }));
  const completionTokens = g.outputTokens * req.n;
  return {
    id: nextId(ctx, "chatcmpl", options.idPrefix ?? "chatcmpl-", 29).id,
    object: "chat.completion",
    created: Math.floor(ctx.clock.now() / 1000),
    model: req.model,
    choices,
    usage: {
      prompt_tokens: g.inputTokens,
      completion_tokens: completionTokens,
      total_tokens: g.inputTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: g.reasoningTokens * req.n,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: "default",
    system_fingerprint: fingerprint(req.model),
  } satisfies ChatCompletion;
}

/**
 * Validates a Chat Completions body and answers it: the `chat.completion` object, or an
 * {@link HttpError} thrown in OpenAI's terms. `knownModels` is the host's model list
 * (`ctx.acceptsModel` decides with the emulator's `models` option).
 */
export function chatCompletion(
  ctx: EmulatorContext,
  body: unknown,
  knownModels: readonly string[],
  options: ChatOptions = {},
): Record<string, unknown> {
  return buildChatCompletion(ctx, parseChatRequest(ctx, body, knownModels, options), options);
}

/** A completion as server-sent events (`chat.completion.chunk`s, then `[DONE]`). */
export function chatStream(built: Record<string, unknown>, includeUsage: boolean): string {
  // Built by buildChatCompletion, which checks it against the SDK's type.
  const completion = built as unknown as ChatCompletion;
  const { id, created, model, system_fingerprint, service_tier, choices } = completion;
  const events: unknown[] = [];
  const chunk = (choiceList: ChatCompletionChunk["choices"], usage?: CompletionUsage) =>
    ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      service_tier,
      system_fingerprint,
      choices: choiceList,
      ...(includeUsage ? { usage: usage ?? null } : {}),
    }) satisfies ChatCompletionChunk;
  for (const c of choices) {
    events.push(
      chunk([{
        index: c.index,
        delta: { role: "assistant", content: "", refusal: null },
        logprobs: null,
        finish_reason: null,
      }]),
    );
    // Every character goes out, leading whitespace included (a `reply` fault's text may have some).
    for (const piece of (c.message.content ?? "").match(/\S+\s*|^\s+/g) ?? []) {
      events.push(
        chunk([{ index: c.index, delta: { content: piece }, logprobs: null, finish_reason: null }]),
      );
    }
    events.push(
      chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finish_reason }]),
    );
  }
  if (includeUsage) events.push(chunk([], completion.usage));
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
}

/** Rate-limit headers as the API sends them with a completion. */
export function rateLimitHeaders(promptTokens: number): Record<string, string> {
  return {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": String(30_000_000 - promptTokens),
    "x-ratelimit-reset-tokens": "0s",
  };
}

/** The whole HTTP answer to a chat request: JSON, or an event stream when asked. */
export function chatReply(
  ctx: EmulatorContext,
  body: unknown,
  knownModels: readonly string[],
  options: ChatOptions = {},
): Reply {
  const req = parseChatRequest(ctx, body, knownModels, options);
  const completion = buildChatCompletion(ctx, req, options);
  const headers = rateLimitHeaders((completion.usage as { prompt_tokens: number }).prompt_tokens);
  if (!req.stream) return { json: completion, headers };
  return {
    body: chatStream(completion, req.includeUsage),
    headers: {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    },
  };
}
