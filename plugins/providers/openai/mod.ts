/**
 * The `openai` provider: Chat Completions through the official `openai` SDK. The key comes from
 * `--api-key`, `OPENAI_API_KEY` or `.env`. Options (`provider_options`): `base_url` (another
 * endpoint, e.g. the emulator), `timeout_ms` (per call, default 10 minutes).
 *
 * The SDK's own retries are off: Loom retries transient errors itself, the same way for every
 * provider, and stops the run on errors no retry can fix.
 * @module
 */
import { LoomUsageError } from "../../../core/errors.ts";
import { definePlugin } from "../../../core/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { toProviderError } from "./errors.ts";
import { chatCompletionBody } from "./request.ts";

const KNOWN = ["apiKey", "base_url", "timeout_ms"];

function checkOptions(options: Readonly<Record<string, unknown>>): { base_url?: string; timeout_ms?: number } {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length) throw new LoomUsageError(`openai: unknown provider option(s) ${unknown.join(", ")} (known: base_url, timeout_ms)`);
  const { base_url, timeout_ms } = options;
  if (base_url !== undefined && (typeof base_url !== "string" || !/^https?:\/\//.test(base_url))) {
    throw new LoomUsageError("openai: base_url must be an http(s) URL");
  }
  if (timeout_ms !== undefined && !(typeof timeout_ms === "number" && timeout_ms > 0)) {
    throw new LoomUsageError("openai: timeout_ms must be a positive number of milliseconds");
  }
  return options as { base_url?: string; timeout_ms?: number };
}

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "openai",
  description: "OpenAI Chat Completions (key: OPENAI_API_KEY).",
  apiKey: { envVars: () => ["OPENAI_API_KEY"] },
  async create(options): Promise<ProviderV1> {
    const { base_url, timeout_ms } = checkOptions(options);
    const { default: OpenAI } = await import("openai");
    const client = new OpenAI({
      apiKey: String(options.apiKey),
      baseURL: base_url,
      maxRetries: 0,
      timeout: timeout_ms ?? 600_000,
    });
    return {
      specificationVersion: "loom.provider.v1",
      name: "openai",
      capabilities: { sync: true, batch: false, tokens: false },
      cacheIdentity: base_url ? { base_url } : {},
      async generate(request, callOptions) {
        let completion;
        try {
          completion = await client.chat.completions.create(
            chatCompletionBody(request) as unknown as Parameters<typeof client.chat.completions.create>[0] & { stream?: false },
            { signal: callOptions?.signal },
          );
        } catch (error) {
          throw toProviderError(error, "openai");
        }
        const choice = completion.choices[0];
        return {
          text: choice?.message?.content ?? "",
          finishReason: choice?.finish_reason ?? undefined,
          usage: { inputTokens: completion.usage?.prompt_tokens, outputTokens: completion.usage?.completion_tokens },
        };
      },
    };
  },
});
