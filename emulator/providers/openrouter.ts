/**
 * The OpenRouter emulator: `/api/v1/chat/completions`, OpenAI's protocol with OpenRouter's
 * differences. Model ids are `vendor/model`; answers name the upstream `provider`, carry
 * `native_finish_reason` and `usage.cost`; ids start with `gen-`; errors are
 * `{"error":{"code":<number>,"message","metadata"?}}` with the HTTP status equal to the code,
 * 402 means no credits, and a failure after generation started comes back as HTTP 200 with the
 * error in the body (the `error-in-200` fault) or, with the part generated so far, in the choice
 * (`choices[].error` and `finish_reason: "error"`, the `error-in-choice` fault). A request's
 * `models` list names fallbacks: when its model is down (the `model-down` fault) the next one
 * answers, and the completion's `model` names the model that served. The Batch API lives in
 * `./openrouter/batches.ts` and answers each request with this module's own builder.
 * @module
 */
import { countTokens, cutToTokens } from "../answers.ts";
import {
  type AnswerFault,
  type EmulatorContext,
  type EmulatorRequest,
  HttpError,
  type ProviderEmulator,
  type Reply,
} from "../server.ts";
import { chatCompletion, chatPrompts, chatStream, parseChatRequest } from "./openai.ts";
import type { ReplyText } from "./openai/chat.ts";
import { OpenRouterBatches } from "./openrouter/batches.ts";
import { batchPrompts } from "./openrouter/submit.ts";

/** Model ids accepted by default. */
export const OPENROUTER_MODELS: readonly string[] = [
  "openai/gpt-4o-mini",
  "openai/gpt-4o",
  "openai/gpt-4.1-mini",
  "anthropic/claude-sonnet-4.5",
  "anthropic/claude-haiku-4.5",
  "google/gemini-2.5-flash",
  "google/gemini-2.5-pro",
  "meta-llama/llama-3.1-8b-instruct",
  "meta-llama/llama-3.3-70b-instruct:free",
  "mistralai/mistral-small-3.2-24b-instruct",
  "deepseek/deepseek-chat",
];

/** Request fields OpenRouter adds to OpenAI's. */
const EXTRA_PARAMS = [
  "provider",
  "models",
  "transforms",
  "route",
  "reasoning",
  "usage",
  "plugins",
  "top_k",
  "repetition_penalty",
  "min_p",
  "top_a",
];

/** Upstream provider names by vendor prefix, as OpenRouter reports them. */
const UPSTREAM: Record<string, string> = {
  openai: "OpenAI",
  anthropic: "Anthropic",
  google: "Google AI Studio",
  "meta-llama": "DeepInfra",
  mistralai: "Mistral",
  deepseek: "DeepSeek",
};

/** Credits charged per token (a flat, made-up rate, so `usage.cost` is deterministic). */
const COST_PER_TOKEN = 0.000001;

function upstreamOf(model: string): string {
  return UPSTREAM[model.split("/")[0]] ?? "Emulated";
}

/** OpenRouter's error body: the HTTP status is the numeric `code`. */
function errorReply(
  status: number,
  message: string,
  _code?: string,
  extra?: Record<string, unknown>,
): Reply {
  const metadata = extra?.metadata;
  return { status, json: { error: { code: status, message, ...(metadata ? { metadata } : {}) } } };
}

/** The OpenRouter-specific members of a completion, added to OpenAI's shape. */
function asOpenRouter(completion: Record<string, unknown>, model: string): Record<string, unknown> {
  const choices = completion.choices as Array<Record<string, unknown>>;
  const usage = completion.usage as {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
  };
  return {
    id: completion.id,
    provider: upstreamOf(model),
    model,
    object: "chat.completion",
    created: completion.created,
    choices: choices.map((c) => ({ ...c, native_finish_reason: c.finish_reason })),
    usage: {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.total_tokens,
      cost: Number((usage.total_tokens * COST_PER_TOKEN).toFixed(9)),
    },
  };
}

/** The request's model, checked: a 400 when it is missing or unknown. */
function requestedModel(ctx: EmulatorContext, body: Record<string, unknown>): string {
  const model = typeof body.model === "string" ? body.model : "";
  if (!model) throw new HttpError(400, "No models provided");
  if (!ctx.acceptsModel(model, OPENROUTER_MODELS)) {
    throw new HttpError(400, `${model} is not a valid model ID`);
  }
  return model;
}

/**
 * The models a request may be served by, in order: its `model`, then its `models` fallbacks.
 * unverified: how OpenRouter orders `model` and `models` when a request gives both (its docs show
 * either alone; the primary-then-fallbacks order here is what third-party guides describe).
 */
function candidates(body: Record<string, unknown>, model: string): string[] {
  const fallbacks = Array.isArray(body.models)
    ? body.models.filter((m): m is string => typeof m === "string")
    : [];
  return [...new Set([model, ...fallbacks])];
}

/**
 * A completion whose generation failed partway: the first half of each choice's text, finish
 * reason `error`, the error in the choice (the documented `ErrorResponse`: numeric `code`,
 * `message`, `metadata`), usage counting what was generated.
 * unverified: OpenRouter documents this shape for errors after a stream started (its errors page)
 * and types `choices[].error` on non-streaming choices too; the partial content in a non-streamed
 * answer and `native_finish_reason: "error"` are assumed.
 */
function failedChoice(
  completion: Record<string, unknown>,
  code: number,
  message: string,
): Record<string, unknown> {
  const usage = completion.usage as { prompt_tokens: number; cost: number };
  let generated = 0;
  const choices =
    (completion.choices as Array<Record<string, unknown> & { message: { content: string } }>).map(
      (c) => {
        const text = c.message.content;
        const words = countTokens(text);
        // Half the words, or of a one-"word" text (compact JSON) half the characters.
        const content = words > 1
          ? cutToTokens(text, Math.floor(words / 2))
          : cutToTokens(text, Math.floor(text.length / 8), "json");
        generated += countTokens(content);
        const error = {
          code,
          message,
          metadata: { provider_name: completion.provider, raw: "upstream stream reset" },
        };
        return {
          ...c,
          message: { ...c.message, content },
          finish_reason: "error",
          native_finish_reason: "error",
          error,
        };
      },
    );
  const total = usage.prompt_tokens + generated;
  return {
    ...completion,
    choices,
    usage: {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: generated,
      total_tokens: total,
      cost: Number((total * COST_PER_TOKEN).toFixed(9)),
    },
  };
}

/** Creates the OpenRouter provider of an emulator. */
export function createOpenRouter(ctx: EmulatorContext): ProviderEmulator {
  const chatOptions = { extraParams: EXTRA_PARAMS, idPrefix: "gen-", traits: () => undefined };
  /**
   * The completion `served` gives for a request (the request's own model unless a fallback
   * served); inside a batch (`batch`), `stream` is ignored.
   */
  const complete = (
    body: Record<string, unknown>,
    served: string,
    reply?: ReplyText,
    batch = false,
  ) =>
    asOpenRouter(
      chatCompletion(ctx, { ...body, model: served }, OPENROUTER_MODELS, {
        ...chatOptions,
        reply,
        batch,
      }),
      served,
    );
  /**
   * A batch model may name the `:batch` variant of a model, which answers as the model itself.
   * unverified: a live-verified client (crate `openrouter-batch`) says the batch model must be a
   * `:batch` slug; the reference names no such rule, so both spellings are accepted here.
   */
  const base = (body: Record<string, unknown>) =>
    typeof body.model === "string" ? { ...body, model: body.model.replace(/:batch$/, "") } : body;
  const batches = new OpenRouterBatches(ctx, {
    acceptsModel: (model) => ctx.acceptsModel(model.replace(/:batch$/, ""), OPENROUTER_MODELS),
    check: (body) => {
      requestedModel(ctx, base(body));
      parseChatRequest(ctx, base(body), OPENROUTER_MODELS, { ...chatOptions, batch: true });
    },
    answer: (body, reply) => complete(base(body), requestedModel(ctx, base(body)), reply, true),
    upstream: (model) => upstreamOf(model),
  });

  const chat = (req: EmulatorRequest): Reply => {
    const body = req.json();
    const completion = complete(body, requestedModel(ctx, body), req.replyText);
    if (body.stream !== true) return { json: completion };
    const includeUsage =
      (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    return {
      body: chatStream(completion, includeUsage),
      headers: { "content-type": "text/event-stream" },
    };
  };

  return {
    routes: [{
      method: "POST",
      path: /^\/api\/v1\/chat\/completions$/,
      answers: true,
      handle: chat,
    }, ...batches.routes()],
    error: errorReply,
    authenticate(req) {
      const key = req.headers.authorization?.match(/^Bearer\s+(.*)$/i)?.[1]?.trim();
      if (!key) return new HttpError(401, "No auth credentials found");
      if (key !== ctx.options.apiKey) return new HttpError(401, "User not found.");
      return null;
    },
    prompts: (req) =>
      req.method !== "POST"
        ? []
        : req.path.endsWith("/batches")
        ? batchPrompts(req.json())
        : chatPrompts(req.json()),
    answerFault(action: AnswerFault, req: EmulatorRequest): Reply {
      const body = req.json();
      const model = requestedModel(ctx, body);
      if (action.kind === "model-down") {
        const down = action.model ?? model;
        const served = candidates(body, model).find((m) =>
          m !== down && ctx.acceptsModel(m, OPENROUTER_MODELS)
        );
        if (served === undefined) {
          // unverified: the wording; the status is the documented "chosen model is down" 502.
          return errorReply(502, `${down} is temporarily unavailable`, undefined, {
            metadata: { provider_name: upstreamOf(down), raw: "model down" },
          });
        }
        return { json: complete(body, served) };
      }
      return {
        json: failedChoice(
          complete(body, model),
          action.code ?? 502,
          action.message ?? "Provider returned error",
        ),
      };
    },
    errorIn200(message, code) {
      // Generation started upstream, so the status line already said 200.
      return {
        status: 200,
        json: {
          id: `gen-${ctx.next("gen-error")}`,
          object: "chat.completion",
          created: Math.floor(ctx.clock.now() / 1000),
          error: {
            code,
            message,
            metadata: { provider_name: "OpenAI", raw: "upstream connection reset" },
          },
        },
      };
    },
  };
}
