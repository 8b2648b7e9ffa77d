/**
 * Input-token counting for the `google` provider: `models/{model}:countTokens`
 * (`ai.models.countTokens`).
 *
 * How the system prompt is counted: the request goes out as the API's `generateContentRequest`
 * (a whole `GenerateContentRequest`: `systemInstruction`, `contents`, `generationConfig` with the
 * answer schema), which Gemini counts as generation would see it, in one call. The SDK's
 * Developer-API path sends `contents` only and throws client-side on `config.systemInstruction`,
 * `tools` or `generationConfig`, so the `generateContentRequest` field reaches the body through
 * the SDK's own `httpOptions.extraBody`, with `contents` left out (the API takes one or the other,
 * never both). Folding the system prompt into `contents`, or adding a second count for it, would
 * count it as a user turn rather than as the system instruction, and miss the schema.
 * @module
 */
import type { ApiError, CountTokensParameters, GoogleGenAI } from "@google/genai";
import { errorMessage, LoomProviderError } from "../../../core/base/errors.ts";
import type { CallOptions, GenerateRequest } from "../../../core/spec/provider.ts";
import type { Endpoint } from "../_shared/http-errors.ts";
import { googleConnectionFailure, googleFailure } from "./errors.ts";
import { countTokensRequest } from "./request.ts";

/**
 * `countTokens` over the provider's client (`ApiError` is the SDK's error class, passed in as the
 * SDK is imported lazily); errors are mapped as `generate` maps them.
 */
export function googleCountTokens(
  ai: GoogleGenAI,
  ApiErrorClass: typeof ApiError,
  endpoint: Endpoint,
): (request: GenerateRequest, options?: CallOptions) => Promise<number> {
  return async (request, options) => {
    let generateContentRequest;
    try {
      generateContentRequest = countTokensRequest(request);
    } catch (error) {
      // A config field the Gemini Developer API never takes: no row can be counted.
      throw new LoomProviderError(`google: ${errorMessage(error)}`, {
        status: 400,
        fatal: true,
        cause: error,
      });
    }
    const params = {
      model: request.model,
      config: {
        abortSignal: options?.signal,
        httpOptions: { extraBody: { generateContentRequest } },
      },
    };
    let counted;
    try {
      counted = await ai.models.countTokens(params as unknown as CountTokensParameters);
    } catch (error) {
      if (options?.signal?.aborted || error instanceof LoomProviderError) throw error;
      if (error instanceof ApiErrorClass) {
        throw googleFailure(error.status, error.message, undefined, error);
      }
      throw googleConnectionFailure(error, endpoint);
    }
    // Proto3 JSON leaves a zero count out.
    return counted.totalTokens ?? 0;
  };
}
