/**
 * The `anthropic` provider: the Messages API through the official `@anthropic-ai/sdk`. The key
 * comes from `--api-key`, `ANTHROPIC_API_KEY` or `.env`. Options (`provider_options`):
 * `base_url` (another endpoint, e.g. the emulator), `timeout_ms` (per call, default 10 minutes).
 * `params.max_tokens` defaults to 1024 (the API requires one); `stop` becomes `stop_sequences`;
 * `temperature`, `top_p` and `top_k` are refused before any work, as the API version the SDK
 * speaks refuses them.
 * @module
 */
import { LoomUsageError } from "../../../core/errors.ts";
import { definePlugin } from "../../../core/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { toProviderError } from "./errors.ts";
import { messagesBody, paramProblems } from "./request.ts";

const KNOWN = ["apiKey", "base_url", "timeout_ms"];

function checkOptions(options: Readonly<Record<string, unknown>>): { base_url?: string; timeout_ms?: number } {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length) throw new LoomUsageError(`anthropic: unknown provider option(s) ${unknown.join(", ")} (known: base_url, timeout_ms)`);
  const { base_url, timeout_ms } = options;
  if (base_url !== undefined && (typeof base_url !== "string" || !/^https?:\/\//.test(base_url))) {
    throw new LoomUsageError("anthropic: base_url must be an http(s) URL");
  }
  if (timeout_ms !== undefined && !(typeof timeout_ms === "number" && timeout_ms > 0)) {
    throw new LoomUsageError("anthropic: timeout_ms must be a positive number of milliseconds");
  }
  return options as { base_url?: string; timeout_ms?: number };
}

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "anthropic",
  description: "Anthropic Messages (key: ANTHROPIC_API_KEY).",
  apiKey: { envVars: () => ["ANTHROPIC_API_KEY"] },
  async create(options): Promise<ProviderV1> {
    const { base_url, timeout_ms } = checkOptions(options);
    const { default: Anthropic } = await import("@anthropic-ai/sdk");
    // Loom retries transient errors itself; an explicit timeout also lifts the SDK's guard
    // against long non-streaming calls.
    const client = new Anthropic({ apiKey: String(options.apiKey), baseURL: base_url, maxRetries: 0, timeout: timeout_ms ?? 600_000 });
    return {
      specificationVersion: "loom.provider.v1",
      name: "anthropic",
      capabilities: { sync: true, batch: false, tokens: false },
      cacheIdentity: base_url ? { base_url } : {},
      validateParams: paramProblems,
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
        const text = message.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join("");
        return {
          text,
          finishReason: message.stop_reason ?? undefined,
          usage: { inputTokens: message.usage?.input_tokens, outputTokens: message.usage?.output_tokens },
        };
      },
    };
  },
});
