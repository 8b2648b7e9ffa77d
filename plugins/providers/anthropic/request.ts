/**
 * Loom's provider-neutral request as an Anthropic Messages body, and a Message as Loom's answer.
 * One builder and one parser for sync calls and batch requests, so both modes send and read the
 * same thing.
 * @module
 */
import type {
  GenerateParams,
  GenerateRequest,
  GenerateResult,
  ParamProblem,
  ParamsContext,
} from "../../../core/spec/provider.ts";
import { commonParamProblems } from "../_shared/params.ts";
import { anthropicSchema } from "./schema.ts";

/** `max_tokens` is required by the Messages API; this is sent when the job gives none. */
export const DEFAULT_MAX_TOKENS = 1024;

/** The smallest `thinking.budget_tokens` the API takes. */
const MIN_THINKING_BUDGET = 1024;

/** Sampling parameters the API version the 1.x SDK sends (2026-10-21) refuses. */
export const REFUSED_PARAMS = ["temperature", "top_p", "top_k"];

/**
 * Parameters that go into the Messages body as they are (SDK 1.14's `MessageCreateParams`, less
 * what Loom sets itself); `workspace_id` and `user_profile_id` the SDK sends as headers.
 */
const PASSED_THROUGH = [
  "cache_control",
  "container",
  "diagnostics",
  "inference_geo",
  "metadata",
  "output_config",
  "service_tier",
  "speed",
  "stop_sequences",
  "thinking",
  "tool_choice",
  "tools",
  "user_profile_id",
  "workspace_id",
];
/** Loom's own parameter names this provider maps (`stop` → `stop_sequences`). */
const MAPPED = ["max_tokens", "stop"];

/** Problems with a job's parameters, for `validateParams`. */
export function paramProblems(params: GenerateParams, context: ParamsContext): ParamProblem[] {
  const refused = Object.keys(params).filter((p) =>
    params[p] !== undefined && !MAPPED.includes(p) && !PASSED_THROUGH.includes(p) &&
    p !== "stream" && p !== "n"
  )
    .map((param) => ({
      param,
      message: REFUSED_PARAMS.includes(param)
        ? `the Anthropic API version in use (2026-10-21) does not accept ${param}; remove it from params`
        : `the Messages API has no ${param} parameter (it takes max_tokens, stop, ${
          PASSED_THROUGH.slice(0, -2).join(", ")
        }); remove it from params`,
    }));
  // The Messages API has no `n`; `output_config` may carry `effort`, but not a second format.
  const format = (params.output_config as { format?: unknown } | undefined)?.format;
  const common = commonParamProblems({ ...params, output_config: format }, context, {
    count: "n",
    schemaParam: "output_config",
  });
  // A schema structured outputs cannot take even once rewritten (schema.ts) would fail every row.
  const schema = (context.schema ? anthropicSchema(context.schema).problems : [])
    .map((message) => ({ param: "schema", path: ["schema"], message }));
  return [...refused, ...thinkingProblems(params), ...common, ...schema];
}

/**
 * An enabled thinking budget the API refuses: SDK 1.14's `ThinkingConfigEnabled` says it "Must be
 * ≥1024 and less than `max_tokens`" (the default `max_tokens` included).
 */
function thinkingProblems(params: GenerateParams): ParamProblem[] {
  const thinking = params.thinking as { type?: unknown; budget_tokens?: unknown } | undefined;
  if (thinking?.type !== "enabled" || typeof thinking.budget_tokens !== "number") return [];
  const budget = thinking.budget_tokens;
  const max = typeof params.max_tokens === "number" ? params.max_tokens : DEFAULT_MAX_TOKENS;
  if (budget < MIN_THINKING_BUDGET) {
    return [{
      param: "thinking",
      message: `budget_tokens must be at least ${MIN_THINKING_BUDGET} (it is ${budget})`,
    }];
  }
  if (budget >= max) {
    return [{
      param: "thinking",
      message:
        `budget_tokens (${budget}) must be less than max_tokens (${max}); thinking counts against max_tokens, so raise max_tokens above the budget`,
    }];
  }
  return [];
}

/** The Messages body for a request. */
export function messagesBody(request: GenerateRequest): Record<string, unknown> {
  const { max_tokens, stop, ...rest } = request.params;
  return {
    model: request.model,
    max_tokens: max_tokens ?? DEFAULT_MAX_TOKENS,
    ...(request.system ? { system: request.system } : {}),
    messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    ...(stop === undefined ? {} : { stop_sequences: Array.isArray(stop) ? stop : [stop] }),
    ...rest,
    // Structured outputs, the schema rewritten to what the API takes; `output_config` may also
    // carry the job's `effort`.
    ...(request.responseSchema
      ? {
        output_config: {
          ...(rest.output_config as object | undefined),
          format: { type: "json_schema", schema: anthropicSchema(request.responseSchema).schema },
        },
      }
      : {}),
  };
}

/** Params the SDK sends as headers rather than in the body. */
const HEADER_PARAMS: Readonly<Record<string, string>> = {
  workspace_id: "anthropic-workspace-id",
  user_profile_id: "anthropic-user-profile-id",
};

/**
 * A sync `POST /v1/messages` as `messages.create` would send it: the {@link messagesBody}, with
 * `workspace_id` and `user_profile_id` moved into their headers.
 */
export function syncRequest(
  request: GenerateRequest,
): { body: Record<string, unknown>; headers: Record<string, string> } {
  const body = messagesBody(request);
  const headers: Record<string, string> = {};
  for (const [param, header] of Object.entries(HEADER_PARAMS)) {
    if (body[param] !== undefined && body[param] !== null) headers[header] = String(body[param]);
    delete body[param];
  }
  return { body, headers };
}

/** What {@link messageResult} reads of a Message (the SDK's `Message` fits it). */
export interface MessageLike {
  readonly content: ReadonlyArray<{ readonly type: string; readonly text?: unknown }>;
  readonly stop_reason?: string | null;
  readonly usage?: {
    readonly input_tokens?: number | null;
    readonly output_tokens?: number | null;
    readonly output_tokens_details?: { readonly thinking_tokens?: number | null } | null;
  } | null;
}

/**
 * A Message (a sync answer, or a batch's `succeeded` result) as Loom's answer: the text blocks
 * joined (never `thinking` blocks), the stop reason, `truncated` at `max_tokens`, the refusal,
 * the token usage. `output_tokens` is the billed total, thinking included; the thinking part is
 * `usage.output_tokens_details.thinking_tokens` (SDK 1.14's `OutputTokensDetails`), when given.
 */
export function messageResult(message: MessageLike): GenerateResult {
  const thinking = message.usage?.output_tokens_details?.thinking_tokens;
  const text = message.content.flatMap((
    block,
  ) => (block.type === "text" && typeof block.text === "string" ? [block.text] : [])).join("");
  return {
    text,
    finishReason: message.stop_reason ?? undefined,
    ...(message.stop_reason === "max_tokens" ? { truncated: true } : {}),
    ...(message.stop_reason === "refusal" ? { refusal: text || "refused" } : {}),
    usage: {
      inputTokens: message.usage?.input_tokens ?? undefined,
      outputTokens: message.usage?.output_tokens ?? undefined,
      ...(typeof thinking === "number" ? { reasoningTokens: thinking } : {}),
    },
  };
}

/**
 * Fields of the Messages body `POST /v1/messages/count_tokens` takes (SDK 1.14's
 * `MessageCountTokensParams`); `workspace_id` and `user_profile_id` the SDK sends as headers.
 */
const COUNTED = new Set([
  "model",
  "messages",
  "system",
  "output_config",
  "thinking",
  "tool_choice",
  "tools",
  "cache_control",
  "speed",
  "user_profile_id",
  "workspace_id",
]);

/**
 * The `count_tokens` body for a request: the {@link messagesBody} sync calls and batches send,
 * less the fields that do not change the input and that the endpoint refuses (`max_tokens`,
 * `stop_sequences`, `metadata`, `service_tier`, …). The system prompt stays in `system` and the
 * answer schema in `output_config.format`, so both are counted as generation would see them.
 */
export function countTokensBody(request: GenerateRequest): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(messagesBody(request)).filter(([key]) => COUNTED.has(key)),
  );
}
