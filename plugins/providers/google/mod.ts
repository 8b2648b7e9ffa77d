/**
 * The `google` provider: Gemini's `generateContent` through the official `@google/genai` SDK
 * (Gemini Developer API, `v1beta`). The key comes from `--api-key`, `GOOGLE_API_KEY`,
 * `GEMINI_API_KEY` or `.env`. Options (`provider_options`): `base_url` (another endpoint, e.g. the
 * emulator), `timeout_ms` (per call, default 10 minutes). Parameters are renamed to Gemini's
 * (`max_tokens` → `maxOutputTokens`, `top_p` → `topP`, `stop` → `stopSequences`).
 * @module
 */
import { LoomProviderError } from "../../../core/errors.ts";
import { definePlugin } from "../../../core/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { connectionFailure, httpFailure } from "../_shared/http-errors.ts";
import { checkConnectionOptions, DEFAULT_TIMEOUT_MS } from "../_shared/options.ts";
import { generateContentParams, paramProblems } from "./request.ts";

/** The google.rpc.Status name in an ApiError's message (a JSON body), e.g. RESOURCE_EXHAUSTED. */
function statusName(message: string): string | undefined {
  try {
    return (JSON.parse(message) as { error?: { status?: string } }).error?.status;
  } catch {
    return undefined;
  }
}

/** Finish reasons of an answer withheld or cut by a safety or policy filter. */
const BLOCKED = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"]);

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "google",
  description: "Google Gemini (key: GOOGLE_API_KEY or GEMINI_API_KEY).",
  apiKey: { envVars: () => ["GOOGLE_API_KEY", "GEMINI_API_KEY"] },
  async create(options): Promise<ProviderV1> {
    const { base_url, timeout_ms } = checkConnectionOptions("google", options);
    const { ApiError, GoogleGenAI } = await import("@google/genai");
    // The SDK does not retry unless told to; Loom retries transient errors itself.
    const ai = new GoogleGenAI({
      apiKey: String(options.apiKey),
      httpOptions: { ...(base_url ? { baseUrl: base_url } : {}), apiVersion: "v1beta", timeout: timeout_ms ?? DEFAULT_TIMEOUT_MS },
    });
    return {
      specificationVersion: "loom.provider.v1",
      name: "google",
      capabilities: { sync: true, batch: false, tokens: false },
      cacheIdentity: base_url ? { base_url } : {},
      validateParams: paramProblems,
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
        // Thought summaries are not the answer.
        const text = (candidate.content?.parts ?? []).filter((p) => !p.thought).map((p) => p.text ?? "").join("");
        const reason = candidate.finishReason;
        return {
          text,
          finishReason: reason ?? undefined,
          ...(reason === "MAX_TOKENS" ? { truncated: true } : {}),
          ...(reason && BLOCKED.has(reason) ? { refusal: `blocked (${reason})` } : {}),
          usage: { inputTokens: response.usageMetadata?.promptTokenCount, outputTokens: response.usageMetadata?.candidatesTokenCount },
        };
      },
    };
  },
});

