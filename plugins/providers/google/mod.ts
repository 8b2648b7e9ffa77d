/**
 * The `google` provider: Gemini's `generateContent` through the official `@google/genai` SDK
 * (Gemini Developer API, `v1beta`). The key comes from `--api-key`, `GOOGLE_API_KEY`,
 * `GEMINI_API_KEY` or `.env`. Options (`provider_options`): `base_url` (another endpoint, e.g. the
 * emulator), `timeout_ms` (per call, default 10 minutes). Parameters are renamed to Gemini's
 * (`max_tokens` → `maxOutputTokens`, `top_p` → `topP`, `stop` → `stopSequences`).
 * @module
 */
import { LoomProviderError, LoomUsageError } from "../../../core/errors.ts";
import { definePlugin } from "../../../core/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { connectionFailure, httpFailure } from "../_shared/http-errors.ts";
import { generateContentParams } from "./request.ts";

const KNOWN = ["apiKey", "base_url", "timeout_ms"];

function checkOptions(options: Readonly<Record<string, unknown>>): { base_url?: string; timeout_ms?: number } {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length) throw new LoomUsageError(`google: unknown provider option(s) ${unknown.join(", ")} (known: base_url, timeout_ms)`);
  const { base_url, timeout_ms } = options;
  if (base_url !== undefined && (typeof base_url !== "string" || !/^https?:\/\//.test(base_url))) {
    throw new LoomUsageError("google: base_url must be an http(s) URL");
  }
  if (timeout_ms !== undefined && !(typeof timeout_ms === "number" && timeout_ms > 0)) {
    throw new LoomUsageError("google: timeout_ms must be a positive number of milliseconds");
  }
  return options as { base_url?: string; timeout_ms?: number };
}

/** The google.rpc.Status name in an ApiError's message (a JSON body), e.g. RESOURCE_EXHAUSTED. */
function statusName(message: string): string | undefined {
  try {
    return (JSON.parse(message) as { error?: { status?: string } }).error?.status;
  } catch {
    return undefined;
  }
}

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "google",
  description: "Google Gemini (key: GOOGLE_API_KEY or GEMINI_API_KEY).",
  apiKey: { envVars: () => ["GOOGLE_API_KEY", "GEMINI_API_KEY"] },
  async create(options): Promise<ProviderV1> {
    const { base_url, timeout_ms } = checkOptions(options);
    const { ApiError, GoogleGenAI } = await import("@google/genai");
    // The SDK does not retry unless told to; Loom retries transient errors itself.
    const ai = new GoogleGenAI({
      apiKey: String(options.apiKey),
      httpOptions: { ...(base_url ? { baseUrl: base_url } : {}), apiVersion: "v1beta", timeout: timeout_ms ?? 600_000 },
    });
    return {
      specificationVersion: "loom.provider.v1",
      name: "google",
      capabilities: { sync: true, batch: false, tokens: false },
      cacheIdentity: base_url ? { base_url } : {},
      async generate(request, callOptions) {
        const params = generateContentParams(request);
        let response;
        try {
          const call = { ...params, config: { ...params.config, abortSignal: callOptions?.signal } };
          response = await ai.models.generateContent(call as Parameters<typeof ai.models.generateContent>[0]);
        } catch (error) {
          if (callOptions?.signal?.aborted) throw error;
          if (error instanceof ApiError) {
            const failure = { status: error.status, code: statusName(error.message), message: error.message };
            throw httpFailure("google", failure, {}, error);
          }
          throw connectionFailure("google", error);
        }
        const candidate = response.candidates?.[0];
        if (!candidate) {
          // A blocked prompt has no candidate: that row's own problem.
          const reason = response.promptFeedback?.blockReason ?? "no candidate";
          throw new LoomProviderError(`google: the prompt was blocked (${reason})`, { status: 400 });
        }
        const text = (candidate.content?.parts ?? []).map((p) => p.text ?? "").join("");
        return {
          text,
          finishReason: candidate.finishReason ?? undefined,
          usage: { inputTokens: response.usageMetadata?.promptTokenCount, outputTokens: response.usageMetadata?.candidatesTokenCount },
        };
      },
    };
  },
});

