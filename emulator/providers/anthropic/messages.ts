/**
 * `POST /v1/messages` and `POST /v1/messages/count_tokens`, and the Message object both the
 * Messages API and a succeeded batch result carry.
 *
 * Structured output: with `output_config.format` (`{type: "json_schema", schema}`), the single
 * text block is `JSON.stringify(sampleValue(schema, <the plain answer>))` (schema-sample.ts), the
 * constraints a description carries as JSON applied too (`followedSchema`, schema.ts),
 * measured as JSON (answers.ts: 4 characters a token): `max_tokens` cuts it to its first
 * `4 × max_tokens` characters with `stop_reason: "max_tokens"`, else it ends with `end_turn`.
 * @module
 */
import { Buffer } from "node:buffer";
import type {
  ContentBlock,
  Message,
  MessageTokensCount,
  StopReason,
  TextBlock,
  ThinkingBlock,
} from "@anthropic-ai/sdk/resources/messages";
import { answer, countTokens, limitAnswer, type Measure, measureTokens } from "../../answers.ts";
import { sampleValue } from "../../schema-sample.ts";
import { type EmulatorContext, type EmulatorRequest, HttpError, type Reply } from "../../server.ts";
import { followedSchema } from "./schema.ts";
import { KNOWN_MODELS, makeId, VERSION_2026 } from "./shared.ts";
import {
  checkSemantics,
  checkShape,
  type MessageParams,
  type ParamsContext,
  promptOf,
} from "./validate.ts";

/** Largest Messages and count_tokens request body (32 MB); limit `maxMessageBytes`. */
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** Default ceiling of `max_tokens`; limit `maxOutputTokens`. */
const MAX_OUTPUT_TOKENS = 128_000;

/** The validation context of a request: its API version, beta header, accepted models and limits. */
export function paramsContext(ctx: EmulatorContext, req: EmulatorRequest): ParamsContext {
  return {
    version: req.headers["anthropic-version"] ?? VERSION_2026,
    beta: Boolean(req.headers["anthropic-beta"]),
    acceptsModel: (model) => ctx.acceptsModel(model, KNOWN_MODELS),
    maxOutputTokens: ctx.limit("maxOutputTokens", MAX_OUTPUT_TOKENS),
  };
}

/**
 * Thinking tokens a request's `thinking` asks for: with `enabled` or `adaptive`,
 * {@link THINKING_PER_ANSWER_TOKEN} per token of the plain answer, held to `budget_tokens` when
 * enabled; none otherwise. unverified: how much a real model thinks is its own; this is the
 * emulator's fixed rule, so a test can make thinking fill `max_tokens` (adaptive, small cap).
 */
export function thinkingWanted(thinking: MessageParams["thinking"], answerTokens: number): number {
  if (thinking?.type === "adaptive") return THINKING_PER_ANSWER_TOKEN * answerTokens;
  if (thinking?.type === "enabled") {
    return Math.min(thinking.budget_tokens, THINKING_PER_ANSWER_TOKEN * answerTokens);
  }
  return 0;
}

/** Emulated thinking per token of the answer. */
const THINKING_PER_ANSWER_TOKEN = 8;

/** A thinking text of `tokens` words (one token a word, as plain answers count). */
function thinkingText(prompt: string, tokens: number): string {
  const words = `Thinking about ${prompt}`.split(/\s+/).filter(Boolean);
  return Array.from({ length: tokens }, (_, i) => words[i % words.length]).join(" ");
}

/**
 * The assistant's Message for validated parameters. With `thinking` on, a `thinking` block comes
 * first ({@link thinkingWanted} tokens, with an opaque `signature`; empty text under `display:
 * "omitted"`): its tokens count in `output_tokens` (and `output_tokens_details.thinking_tokens`)
 * and against `max_tokens`, so thinking that fills `max_tokens` leaves no text block and
 * `stop_reason: "max_tokens"`. The answer is the deterministic one (or its JSON, for structured
 * output), cut at the first stop sequence it contains (`stop_reason: "stop_sequence"`) or at the
 * tokens left (`"max_tokens"`), else `"end_turn"`. `max_tokens: 0` (cache pre-warming) yields no
 * content at all. `reply` (a `reply` fault's text) then replaces the text as is, the stop reason
 * staying; `output_tokens` counts what was sent.
 */
export function composeMessage(
  params: MessageParams,
  id: string,
  tier: "standard" | "batch",
  reply?: string,
): Message {
  const { prompt, inputs } = promptOf(params as unknown as Record<string, unknown>);
  const full = answer(params.model, prompt, inputs);
  const schema = params.output_config?.format?.schema;
  const measure: Measure = schema ? "json" : "words";
  const whole = schema ? JSON.stringify(sampleValue(followedSchema(schema), full.text)) : full.text;
  const thought = Math.min(thinkingWanted(params.thinking, full.outputTokens), params.max_tokens);
  const left = params.max_tokens - thought;
  let text: string;
  let stopReason: StopReason;
  let stopSequence: string | null = null;
  const stop = firstStop(whole, params.stop_sequences ?? []);
  if (stop && measureTokens(stop.text, measure) <= left) {
    text = stop.text;
    stopReason = "stop_sequence";
    stopSequence = stop.sequence;
  } else {
    const cut = limitAnswer(whole, measure, left);
    text = cut.text;
    stopReason = cut.finish === "length" ? "max_tokens" : "end_turn";
  }
  if (reply !== undefined) text = reply;
  const thinking: ContentBlock[] =
    params.thinking?.type === "enabled" || params.thinking?.type === "adaptive"
      ? [
        {
          type: "thinking",
          thinking: params.thinking.display === "omitted" ? "" : thinkingText(prompt, thought),
          signature: Buffer.from(`emulator-thinking:${id}:${thought}`).toString("base64"),
        } satisfies ThinkingBlock,
      ]
      : [];
  return {
    id,
    type: "message",
    role: "assistant",
    model: params.model,
    content: [
      ...thinking,
      ...(text ? [{ type: "text", text, citations: null } satisfies TextBlock] : []),
    ],
    // Required but nullable in the 1.x Message type: present as null, as the API sends them.
    container: null,
    diagnostics: null,
    stop_details: null,
    stop_reason: stopReason,
    stop_sequence: stopSequence,
    usage: {
      input_tokens: full.inputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      inference_geo: null,
      output_tokens: thought + measureTokens(text, measure),
      output_tokens_details: thinking.length ? { thinking_tokens: thought } : null,
      server_tool_use: null,
      service_tier: tier,
      speed: null,
    },
  } satisfies Message;
}

/** The earliest stop sequence in a text, and the text before it. */
function firstStop(
  text: string,
  sequences: readonly string[],
): { text: string; sequence: string } | undefined {
  let best: { at: number; sequence: string } | undefined;
  for (const sequence of sequences) {
    if (!sequence) continue;
    const at = text.indexOf(sequence);
    if (at >= 0 && (!best || at < best.at)) best = { at, sequence };
  }
  return best && { text: text.slice(0, best.at), sequence: best.sequence };
}

function checkSize(ctx: EmulatorContext, req: EmulatorRequest): void {
  const max = ctx.limit("maxMessageBytes", MAX_MESSAGE_BYTES);
  if (req.raw.length > max) {
    throw new HttpError(
      413,
      `Request exceeds the maximum size of ${max} bytes`,
      "request_too_large",
    );
  }
}

/** `POST /v1/messages`. */
export function createMessage(ctx: EmulatorContext, req: EmulatorRequest): Reply {
  checkSize(ctx, req);
  const body = req.json<unknown>();
  checkShape(body, "message");
  const params = checkSemantics(body, "message", paramsContext(ctx, req));
  return {
    json: composeMessage(params, makeId("msg", ctx.next("message")), "standard", req.replyText),
  };
}

/** `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the same count a message reports. */
export function countMessageTokens(ctx: EmulatorContext, req: EmulatorRequest): Reply {
  checkSize(ctx, req);
  const body = req.json<unknown>();
  checkShape(body, "count");
  const params = checkSemantics(body, "count", paramsContext(ctx, req));
  const { inputs } = promptOf(params as unknown as Record<string, unknown>);
  return {
    json: {
      input_tokens: inputs.reduce((sum, t) => sum + countTokens(t), 0),
    } satisfies MessageTokensCount,
  };
}
