/**
 * The `google` provider: Gemini's `generateContent` through the official `@google/genai` SDK
 * (Gemini Developer API, `v1beta`). The key comes from `--api-key`, `GOOGLE_API_KEY`,
 * `GEMINI_API_KEY` or `.env`. Options (`provider_options`): `base_url` (another endpoint, e.g. the
 * emulator), `timeout_ms` (per call, default 10 minutes). Parameters are renamed to Gemini's
 * (`max_tokens` → `maxOutputTokens`, `top_p` → `topP`, `stop` → `stopSequences`). Thinking models
 * spend their thoughts out of `max_tokens` (a job note says so); thoughts are reported as
 * reasoning tokens, within the output tokens billed.
 * @module
 */
import { definePlugin } from "../../../core/plugins/plugin.ts";
import type { ProviderV1 } from "../../../core/spec/provider.ts";
import { LoomProviderError } from "../../../core/base/errors.ts";
import { GEMINI_URL, googleConnectionFailure, googleFailure } from "./errors.ts";
import { googleFetch } from "./fetch.ts";
import { checkConnectionOptions, DEFAULT_TIMEOUT_MS } from "../_shared/options.ts";
import { googleBatch } from "./batch.ts";
import { answerResult, generateContentParams, jobNotes, paramProblems } from "./request.ts";
import { googleCountTokens } from "./tokens.ts";

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "google",
  description: "Google Gemini (key: GOOGLE_API_KEY or GEMINI_API_KEY).",
  apiKey: { envVars: () => ["GOOGLE_API_KEY", "GEMINI_API_KEY"] },
  async create(options): Promise<ProviderV1> {
    const { base_url, timeout_ms } = checkConnectionOptions("google", options);
    const { ApiError, GoogleGenAI } = await import("@google/genai");
    // The SDK does not retry unless told to; Loom retries transient errors itself, waiting what a
    // failed response asks (its fetch keeps the headers the SDK's ApiError drops).
    const ai = new GoogleGenAI({
      apiKey: String(options.apiKey),
      httpOptions: {
        ...(base_url ? { baseUrl: base_url } : {}),
        apiVersion: "v1beta",
        timeout: timeout_ms ?? DEFAULT_TIMEOUT_MS,
        fetch: googleFetch(),
      },
    });
    const endpoint = { url: base_url ?? GEMINI_URL, timeoutMs: timeout_ms ?? DEFAULT_TIMEOUT_MS };
    return {
      specificationVersion: "loom.provider.v1",
      name: "google",
      capabilities: { sync: true, batch: true, tokens: true },
      cacheIdentity: base_url ? { base_url } : {},
      validateParams: paramProblems,
      jobNotes,
      async generate(request, callOptions) {
        const params = generateContentParams(request);
        let response;
        try {
          const call = {
            ...params,
            config: { ...params.config, abortSignal: callOptions?.signal },
          };
          response = await ai.models.generateContent(
            call as Parameters<typeof ai.models.generateContent>[0],
          );
        } catch (error) {
          if (callOptions?.signal?.aborted || error instanceof LoomProviderError) throw error;
          if (error instanceof ApiError) {
            throw googleFailure(error.status, error.message, undefined, error);
          }
          throw googleConnectionFailure(error, endpoint);
        }
        // A blocked prompt (no candidate) throws: that row's own problem.
        return answerResult(response);
      },
      // `countTokens` with the whole request, system instruction included (see `tokens.ts`).
      countTokens: googleCountTokens(ai, ApiError, endpoint),
      batch: googleBatch({
        ai,
        ApiError,
        apiKey: String(options.apiKey),
        baseUrl: base_url,
        timeoutMs: timeout_ms ?? DEFAULT_TIMEOUT_MS,
      }),
    };
  },
});
