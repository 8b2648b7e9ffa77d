/**
 * Validation of Messages API parameters, shared by `/v1/messages`, `/v1/messages/count_tokens` and
 * each request of a message batch. Split in two because the batch API splits it: the request's
 * shape (required fields, their types, `max_tokens ≥ 1`, no `stream`) is checked when the batch
 * is created, while everything else "is performed asynchronously, and validation errors are
 * returned when processing of the entire batch has ended" (batch guide), as `errored` results.
 * Messages follow the API's pydantic-style wording (`<path>: <problem>`).
 * @module
 */
import { HttpError } from "../../server.ts";
import { checkOutputSchema } from "./schema.ts";
import { invalid, isObject, VERSION_2026 } from "./shared.ts";

/** Which endpoint the parameters are for. */
export type ParamsKind = "message" | "count" | "batch";

/** The parameters the emulator reads once they passed validation. */
export interface MessageParams {
  model: string;
  max_tokens: number;
  messages: Array<{ role: string; content: string | Array<Record<string, unknown>> }>;
  system?: string | Array<Record<string, unknown>>;
  stop_sequences?: string[];
  /** Extended thinking (`budget_tokens` ≥ 1024 and below `max_tokens` when enabled). */
  thinking?:
    | { type: "enabled"; budget_tokens: number; display?: "summarized" | "omitted" | null }
    | { type: "adaptive"; display?: "summarized" | "omitted" | null }
    | { type: "disabled" | "between_tools" }
    | null;
  /** Structured output: `format` asks for JSON conforming to `schema`. */
  output_config?: {
    effort?: string | null;
    format?: { type: "json_schema"; schema: Record<string, unknown> } | null;
  } | null;
}

/** What semantic checks depend on. */
export interface ParamsContext {
  /** The request's `anthropic-version`. */
  version: string;
  /** An `anthropic-beta` header was sent: beta fields are allowed, so unknown fields are not refused. */
  beta: boolean;
  acceptsModel(model: string): boolean;
  /** Largest `max_tokens` accepted (one number for every model). */
  maxOutputTokens: number;
}

/** Body fields of `messages.create` in SDK 1.14 (`workspace_id` and `user_profile_id` travel as headers). */
const MESSAGE_FIELDS = [
  "model",
  "messages",
  "max_tokens",
  "cache_control",
  "container",
  "diagnostics",
  "inference_geo",
  "metadata",
  "output_config",
  "service_tier",
  "speed",
  "stop_sequences",
  "stream",
  "system",
  "thinking",
  "tool_choice",
  "tools",
];
/** Body fields of `messages.countTokens`. */
const COUNT_FIELDS = [
  "model",
  "messages",
  "cache_control",
  "output_config",
  "speed",
  "system",
  "thinking",
  "tool_choice",
  "tools",
];
/** Sampling parameters: allowed on 2023-06-01, removed on 2026-10-21. */
const SAMPLING = ["temperature", "top_p", "top_k"];

/** Content block types a message may carry; only text is interpreted, the others pass through. */
const BLOCK_TYPES = new Set([
  "text",
  "image",
  "document",
  "search_result",
  "thinking",
  "redacted_thinking",
  "tool_use",
  "tool_result",
  "server_tool_use",
  "web_search_tool_result",
  "web_fetch_tool_result",
  "code_execution_tool_result",
  "bash_code_execution_tool_result",
  "text_editor_code_execution_tool_result",
  "tool_search_tool_result",
  "container_upload",
]);

/**
 * The checks a schema makes: the body is an object, `model`, `messages` and (except for
 * count_tokens) `max_tokens` are present with the right types, `max_tokens` is not negative (at
 * least 1 in a batch, where the cache pre-warming `max_tokens: 0` is not allowed) and a batch
 * request does not stream. `at` prefixes paths (`requests.3.params.`).
 */
export function checkShape(
  body: unknown,
  kind: ParamsKind,
  at = "",
): asserts body is Record<string, unknown> {
  if (!isObject(body)) {
    throw invalid(`${at ? at.slice(0, -1) : "body"}: Input should be a valid dictionary`);
  }
  if (body.model === undefined) throw invalid(`${at}model: Field required`);
  if (typeof body.model !== "string") throw invalid(`${at}model: Input should be a valid string`);
  if (kind !== "count") {
    const max = body.max_tokens;
    if (max === undefined) throw invalid(`${at}max_tokens: Field required`);
    if (typeof max !== "number" || !Number.isInteger(max)) {
      throw invalid(`${at}max_tokens: Input should be a valid integer`);
    }
    const min = kind === "batch" ? 1 : 0;
    if (max < min) {
      throw invalid(`${at}max_tokens: Input should be greater than or equal to ${min}`);
    }
  }
  if (body.messages === undefined) throw invalid(`${at}messages: Field required`);
  if (!Array.isArray(body.messages)) throw invalid(`${at}messages: Input should be a valid list`);
  if (kind === "batch" && body.stream !== undefined && body.stream !== false) {
    throw invalid(`${at}stream: streaming is not supported in message batches`);
  }
}

/**
 * Everything else the Messages API checks: unknown fields, the sampling parameters per API version,
 * `system`, `stop_sequences`, each message's role and content, the output token ceiling, and last
 * the model (404 `not_found_error`, as the API answers an unknown model).
 */
export function checkSemantics(
  body: Record<string, unknown>,
  kind: ParamsKind,
  cx: ParamsContext,
  at = "",
): MessageParams {
  const allowed = kind === "count" ? COUNT_FIELDS : MESSAGE_FIELDS;
  for (const key of Object.keys(body)) {
    if (SAMPLING.includes(key) && kind !== "count") {
      if (cx.version === VERSION_2026) {
        throw invalid(
          `${at}${key}: not supported with anthropic-version ${VERSION_2026}; remove it`,
        );
      }
      checkSampling(key, body[key], at);
      continue;
    }
    if (!allowed.includes(key) && !cx.beta) {
      throw invalid(`${at}${key}: Extra inputs are not permitted`);
    }
  }
  checkSystem(body.system, at);
  checkStopSequences(body.stop_sequences, at);
  checkOutputConfig(body.output_config, cx, at);
  checkThinking(body.thinking, kind === "count" ? undefined : (body.max_tokens as number), at);
  checkMessages(body.messages as unknown[], cx, at);
  const model = body.model as string;
  if (kind !== "count" && (body.max_tokens as number) > cx.maxOutputTokens) {
    const ceiling =
      `${cx.maxOutputTokens}, which is the maximum allowed number of output tokens for ${model}`;
    throw invalid(`${at}max_tokens: ${body.max_tokens} > ${ceiling}`);
  }
  if (kind === "message" && body.stream === true) {
    // The emulator answers whole messages only; saying so beats answering JSON to an SSE reader.
    throw invalid(`${at}stream: streaming is not supported by this emulator`);
  }
  if (!cx.acceptsModel(model)) throw new HttpError(404, `${at}model: ${model}`, "not_found_error");
  return body as unknown as MessageParams;
}

function checkSampling(key: string, value: unknown, at: string): void {
  if (typeof value !== "number") throw invalid(`${at}${key}: Input should be a valid number`);
  if (key === "top_k") {
    if (!Number.isInteger(value) || value < 0) {
      throw invalid(`${at}top_k: Input should be greater than or equal to 0`);
    }
  } else if (value < 0) throw invalid(`${at}${key}: Input should be greater than or equal to 0`);
  else if (value > 1) throw invalid(`${at}${key}: Input should be less than or equal to 1`);
}

function checkSystem(system: unknown, at: string): void {
  if (system === undefined || typeof system === "string") return;
  if (!Array.isArray(system)) {
    throw invalid(`${at}system: Input should be a valid string or a list of text blocks`);
  }
  system.forEach((block, i) => {
    if (!isObject(block) || block.type !== "text") {
      throw invalid(`${at}system.${i}.type: Input should be 'text'`);
    }
    if (typeof block.text !== "string") {
      throw invalid(`${at}system.${i}.text: Input should be a valid string`);
    }
  });
}

const EFFORTS = ["low", "medium", "high", "xhigh", "max"];

/**
 * `output_config`: an object with an optional `effort` (one of {@link EFFORTS}) and an optional
 * `format`, which must be `{type: "json_schema", schema: {…}}` (`null` means none) with a schema
 * structured outputs support (schema.ts). Other members
 * are refused unless a beta header is sent, as for top-level fields.
 */
function checkOutputConfig(config: unknown, cx: ParamsContext, at: string): void {
  if (config === undefined || config === null) return;
  const here = `${at}output_config`;
  if (!isObject(config)) throw invalid(`${here}: Input should be a valid dictionary`);
  for (const key of Object.keys(config)) {
    if (key !== "effort" && key !== "format" && !cx.beta) {
      throw invalid(`${here}.${key}: Extra inputs are not permitted`);
    }
  }
  const effort = config.effort;
  if (effort !== undefined && effort !== null && !EFFORTS.includes(effort as string)) {
    throw invalid(`${here}.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'`);
  }
  const format = config.format;
  if (format === undefined || format === null) return;
  if (!isObject(format)) throw invalid(`${here}.format: Input should be a valid dictionary`);
  if (format.type === undefined) throw invalid(`${here}.format.type: Field required`);
  if (format.type !== "json_schema") {
    throw invalid(`${here}.format.type: Input should be 'json_schema'`);
  }
  for (const key of Object.keys(format)) {
    if (key !== "type" && key !== "schema") {
      throw invalid(`${here}.format.${key}: Extra inputs are not permitted`);
    }
  }
  if (format.schema === undefined) throw invalid(`${here}.format.schema: Field required`);
  if (!isObject(format.schema)) {
    throw invalid(`${here}.format.schema: Input should be a valid dictionary`);
  }
  checkOutputSchema(format.schema, `${here}.format.schema`);
}

/** The smallest thinking budget (SDK 1.14's `ThinkingConfigEnabled`: "Must be ≥1024"). */
const MIN_THINKING_BUDGET = 1024;
const THINKING_TYPES = ["enabled", "disabled", "adaptive", "between_tools"];

/**
 * `thinking`: one of {@link THINKING_TYPES}; `enabled` needs an integer `budget_tokens` of at
 * least 1024 and below `max_tokens` (both from the SDK's documented type). unverified: the
 * wording of these messages.
 */
function checkThinking(thinking: unknown, maxTokens: number | undefined, at: string): void {
  if (thinking === undefined || thinking === null) return;
  const here = `${at}thinking`;
  if (!isObject(thinking)) throw invalid(`${here}: Input should be a valid dictionary`);
  if (!THINKING_TYPES.includes(thinking.type as string)) {
    throw invalid(
      `${here}.type: Input tag '${
        String(thinking.type)
      }' does not match any of the expected tags: ${
        THINKING_TYPES.map((t) => `'${t}'`).join(", ")
      }`,
    );
  }
  if (
    thinking.display !== undefined && thinking.display !== null &&
    thinking.display !== "summarized" && thinking.display !== "omitted"
  ) {
    throw invalid(`${here}.${thinking.type}.display: Input should be 'summarized' or 'omitted'`);
  }
  if (thinking.type !== "enabled") return;
  const budget = thinking.budget_tokens;
  if (budget === undefined) throw invalid(`${here}.enabled.budget_tokens: Field required`);
  if (typeof budget !== "number" || !Number.isInteger(budget)) {
    throw invalid(`${here}.enabled.budget_tokens: Input should be a valid integer`);
  }
  if (budget < MIN_THINKING_BUDGET) {
    throw invalid(
      `${here}.enabled.budget_tokens: Input should be greater than or equal to ${MIN_THINKING_BUDGET}`,
    );
  }
  if (maxTokens !== undefined && maxTokens <= budget) {
    throw invalid(`${at}max_tokens: must be greater than thinking.budget_tokens (${budget})`);
  }
}

function checkStopSequences(stops: unknown, at: string): void {
  if (stops === undefined) return;
  if (!Array.isArray(stops)) throw invalid(`${at}stop_sequences: Input should be a valid list`);
  stops.forEach((s, i) => {
    if (typeof s !== "string") {
      throw invalid(`${at}stop_sequences.${i}: Input should be a valid string`);
    }
  });
}

/**
 * Roles are `user` or `assistant`, the first is `user` [unverified: the API once said so, the
 * current reference no longer does]; consecutive turns of one role are allowed (the API merges
 * them). Content is a string or content blocks, non-empty except in a final assistant turn (a
 * prefill). Version 2026-10-21 refuses `document` blocks in assistant turns and `citations` on
 * user text blocks.
 */
function checkMessages(messages: unknown[], cx: ParamsContext, at: string): void {
  if (messages.length === 0) throw invalid(`${at}messages: at least one message is required`);
  messages.forEach((m, i) => {
    const here = `${at}messages.${i}`;
    if (!isObject(m)) throw invalid(`${here}: Input should be a valid dictionary`);
    if (m.role !== "user" && m.role !== "assistant") {
      throw invalid(`${here}.role: Input should be 'user' or 'assistant'`);
    }
    if (i === 0 && m.role !== "user") {
      throw invalid(`${at}messages: first message must use the "user" role`);
    }
    const prefill = i === messages.length - 1 && m.role === "assistant";
    const empty = () =>
      invalid(
        `${here}: all messages must have non-empty content except for the optional final assistant message`,
      );
    if (typeof m.content === "string") {
      if (!m.content && !prefill) throw empty();
      return;
    }
    if (m.content === undefined) throw invalid(`${here}.content: Field required`);
    if (!Array.isArray(m.content)) {
      throw invalid(`${here}.content: Input should be a valid string or a list of content blocks`);
    }
    if (m.content.length === 0 && !prefill) throw empty();
    m.content.forEach((block, j) =>
      checkBlock(block, m.role as string, `${here}.content.${j}`, cx)
    );
  });
}

function checkBlock(block: unknown, role: string, here: string, cx: ParamsContext): void {
  if (!isObject(block)) throw invalid(`${here}: Input should be a valid dictionary`);
  if (typeof block.type !== "string" || !BLOCK_TYPES.has(block.type)) {
    throw invalid(
      `${here}.type: Input tag '${
        String(block.type)
      }' does not match any expected content block type`,
    );
  }
  if (block.type === "text") {
    if (typeof block.text !== "string") throw invalid(`${here}.text: Field required`);
    if (!block.text) throw invalid(`${here}: text content blocks must be non-empty`);
    if (
      cx.version === VERSION_2026 && role === "user" && Array.isArray(block.citations) &&
      block.citations.length
    ) {
      throw invalid(
        `${here}.citations: not supported on user text blocks with anthropic-version ${VERSION_2026}`,
      );
    }
  }
  if (block.type === "document" && role === "assistant" && cx.version === VERSION_2026) {
    throw invalid(
      `${here}: document blocks are not allowed in assistant messages with anthropic-version ${VERSION_2026}`,
    );
  }
}

/** The texts of a content value: the string itself, or each text block's text. */
export function contentTexts(content: unknown): string[] {
  if (typeof content === "string") return [content];
  if (!Array.isArray(content)) return [];
  return content
    .filter((b) => isObject(b) && b.type === "text" && typeof b.text === "string")
    .map((b) => b.text as string);
}

/**
 * The prompt (the last user turn's text) and every input text (system, then each message), the
 * way answers.ts wants them. Tolerant of malformed input, since fault rules read it too.
 */
export function promptOf(params: Record<string, unknown>): { prompt: string; inputs: string[] } {
  const messages = Array.isArray(params.messages) ? params.messages.filter(isObject) : [];
  const inputs = [
    ...contentTexts(params.system),
    ...messages.flatMap((m) => contentTexts(m.content)),
  ];
  const lastUser = messages.filter((m) => m.role === "user").at(-1);
  return { prompt: lastUser ? contentTexts(lastUser.content).join("\n") : "", inputs };
}
