/**
 * The `anthropic` provider: the Messages API through the official `@anthropic-ai/sdk`. The key
 * comes from `--api-key`, `ANTHROPIC_API_KEY` or `.env`. Options (`provider_options`):
 * `base_url` (another endpoint, e.g. the emulator), `timeout_ms` (per call, default 10 minutes).
 * `params.max_tokens` defaults to 1024 (the API requires one); `stop` becomes `stop_sequences`;
 * `temperature`, `top_p` and `top_k` are refused before any work, as the API version the SDK
 * speaks refuses them. An answer schema is rewritten to what structured outputs take, or the job
 * is refused at `schema:` when it cannot be (`schema.ts`). Batch mode uses Message Batches (see `batch.ts`); token counting uses
 * `count_tokens` (see `tokens.ts`). A deprecated model is said once per run, as a job note
 * (`notes.ts`), never by the SDK on every row.
 * @module
 */
import type { Message } from "@anthropic-ai/sdk/resources/messages";
import { definePlugin } from "../../../core/plugins/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { checkConnectionOptions, DEFAULT_TIMEOUT_MS } from "../_shared/options.ts";
import { toProviderError } from "./errors.ts";
import { createBatchApi } from "./batch.ts";
import { jobNotes } from "./notes.ts";
import { DEFAULT_MAX_TOKENS, messageResult, paramProblems, syncRequest } from "./request.ts";
import { anthropicCountTokens } from "./tokens.ts";

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "anthropic",
  description: "Anthropic Messages (key: ANTHROPIC_API_KEY).",
  apiKey: { envVars: () => ["ANTHROPIC_API_KEY"] },
  async create(options): Promise<ProviderV1> {
    const { base_url, timeout_ms } = checkConnectionOptions("anthropic", options);
    const { default: Anthropic } = await import("@anthropic-ai/sdk");
    // Loom retries transient errors itself; an explicit timeout also lifts the SDK's guard
    // against long non-streaming calls.
    const client = new Anthropic({
      apiKey: String(options.apiKey),
      baseURL: base_url,
      maxRetries: 0,
      timeout: timeout_ms ?? DEFAULT_TIMEOUT_MS,
    });
    return {
      specificationVersion: "loom.provider.v1",
      name: "anthropic",
      capabilities: { sync: true, batch: true, tokens: true },
      defaultMaxTokens: DEFAULT_MAX_TOKENS,
      cacheIdentity: base_url ? { base_url } : {},
      validateParams: paramProblems,
      // A deprecated model, said once per run instead of by the SDK on every call.
      jobNotes,
      // Message Batches, over the same client, body builder and answer parser.
      batch: createBatchApi(client),
      // `count_tokens`, over the same body builder (see `tokens.ts`).
      countTokens: anthropicCountTokens(client),
      async generate(request, callOptions) {
        let message;
        try {
          // `client.post`, not `messages.create`, which prints the deprecation warnings (notes.ts)
          // with console.warn on every call; the wire request is the same.
          message = await client.post<Message>("/v1/messages", {
            ...syncRequest(request),
            signal: callOptions?.signal,
          });
        } catch (error) {
          throw toProviderError(error, "anthropic", client);
        }
        return messageResult(message);
      },
    };
  },
});
