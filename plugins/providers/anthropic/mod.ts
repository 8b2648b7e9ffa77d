/**
 * The `anthropic` provider: the Messages API through the official `@anthropic-ai/sdk`. The key
 * comes from `--api-key`, `ANTHROPIC_API_KEY` or `.env`. Options (`provider_options`):
 * `base_url` (another endpoint, e.g. the emulator), `timeout_ms` (per call, default 10 minutes).
 * `params.max_tokens` defaults to 1024 (the API requires one); `stop` becomes `stop_sequences`;
 * `temperature`, `top_p` and `top_k` are refused before any work, as the API version the SDK
 * speaks refuses them. Batch mode uses Message Batches (see `batch.ts`); token counting uses
 * `count_tokens` (see `tokens.ts`).
 * @module
 */
import { definePlugin } from "../../../core/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { checkConnectionOptions, DEFAULT_TIMEOUT_MS } from "../_shared/options.ts";
import { toProviderError } from "./errors.ts";
import { createBatchApi } from "./batch.ts";
import { DEFAULT_MAX_TOKENS, messageResult, messagesBody, paramProblems } from "./request.ts";
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
    const client = new Anthropic({ apiKey: String(options.apiKey), baseURL: base_url, maxRetries: 0, timeout: timeout_ms ?? DEFAULT_TIMEOUT_MS });
    return {
      specificationVersion: "loom.provider.v1",
      name: "anthropic",
      capabilities: { sync: true, batch: true, tokens: true },
      defaultMaxTokens: DEFAULT_MAX_TOKENS,
      cacheIdentity: base_url ? { base_url } : {},
      validateParams: paramProblems,
      // Message Batches, over the same client, body builder and answer parser.
      batch: createBatchApi(client),
      // `count_tokens`, over the same body builder (see `tokens.ts`).
      countTokens: anthropicCountTokens(client),
      async generate(request, callOptions) {
        let message;
        try {
          message = await client.messages.create(
            messagesBody(request) as unknown as Parameters<typeof client.messages.create>[0] & { stream?: false },
            { signal: callOptions?.signal },
          );
        } catch (error) {
          throw toProviderError(error, "anthropic");
        }
        return messageResult(message);
      },
    };
  },
});
