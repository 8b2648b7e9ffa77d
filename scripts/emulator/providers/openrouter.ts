/**
 * The OpenRouter emulator: `/api/v1/chat/completions`, OpenAI's protocol with OpenRouter's
 * differences. Model ids are `vendor/model`; answers name the upstream `provider`, carry
 * `native_finish_reason` and `usage.cost`; ids start with `gen-`; errors are
 * `{"error":{"code":<number>,"message","metadata"?}}` with the HTTP status equal to the code,
 * 402 means no credits, and a failure after generation started comes back as HTTP 200 with the
 * error in the body (the `error-in-200` fault).
 * @module
 */
import { type EmulatorContext, type EmulatorRequest, HttpError, type ProviderEmulator, type Reply } from "../server.ts";
import { chatCompletion, chatPrompts, chatStream } from "./openai.ts";

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
const EXTRA_PARAMS = ["provider", "models", "transforms", "route", "reasoning", "usage", "plugins", "top_k", "repetition_penalty", "min_p", "top_a"];

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
function errorReply(status: number, message: string, _code?: string, extra?: Record<string, unknown>): Reply {
  const metadata = extra?.metadata;
  return { status, json: { error: { code: status, message, ...(metadata ? { metadata } : {}) } } };
}

/** The OpenRouter-specific members of a completion, added to OpenAI's shape. */
function asOpenRouter(completion: Record<string, unknown>, model: string): Record<string, unknown> {
  const choices = completion.choices as Array<Record<string, unknown>>;
  const usage = completion.usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
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

/** Creates the OpenRouter provider of an emulator. */
export function createOpenRouter(ctx: EmulatorContext): ProviderEmulator {
  const chat = (req: EmulatorRequest): Reply => {
    const body = req.json();
    const model = typeof body.model === "string" ? body.model : "";
    if (!model) throw new HttpError(400, "No models provided");
    if (!ctx.acceptsModel(model, OPENROUTER_MODELS)) throw new HttpError(400, `${model} is not a valid model ID`);
    const completion = asOpenRouter(
      chatCompletion(ctx, body, OPENROUTER_MODELS, {
        extraParams: EXTRA_PARAMS,
        idPrefix: "gen-",
        traits: () => undefined,
        reply: req.replyText,
      }),
      model,
    );
    if (body.stream !== true) return { json: completion };
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    return { body: chatStream(completion, includeUsage), headers: { "content-type": "text/event-stream" } };
  };

  return {
    routes: [{ method: "POST", path: /^\/api\/v1\/chat\/completions$/, answers: true, handle: chat }],
    error: errorReply,
    authenticate(req) {
      const key = req.headers.authorization?.match(/^Bearer\s+(.*)$/i)?.[1]?.trim();
      if (!key) return new HttpError(401, "No auth credentials found");
      if (key !== ctx.options.apiKey) return new HttpError(401, "User not found.");
      return null;
    },
    prompts: (req) => (req.method === "POST" ? chatPrompts(req.json()) : []),
    errorIn200(message, code) {
      // Generation started upstream, so the status line already said 200.
      return {
        status: 200,
        json: {
          id: `gen-${ctx.next("gen-error")}`,
          object: "chat.completion",
          created: Math.floor(ctx.clock.now() / 1000),
          error: { code, message, metadata: { provider_name: "OpenAI", raw: "upstream connection reset" } },
        },
      };
    },
  };
}
