/**
 * Input-token counting for the `openai` provider: `POST /v1/responses/input_tokens`
 * (`client.responses.inputTokens.count`), the only counting endpoint OpenAI has. Chat Completions
 * has none, so the request sync calls send ({@link chatCompletionBody}) is counted in its
 * Responses form ({@link inputTokensBody}): the system prompt as the first `system` message of
 * `input`, then the messages, and the answer schema as `text.format`.
 * @module
 */
import type OpenAI from "openai";
import type { CallOptions, GenerateRequest } from "../../../core/spec/provider.ts";
import { toProviderError } from "./errors.ts";
import { inputTokensBody } from "./request.ts";

/** `countTokens` over the provider's client; errors are mapped as `generate` maps them. */
export function openaiCountTokens(
  client: OpenAI,
  provider: string,
): (request: GenerateRequest, options?: CallOptions) => Promise<number> {
  return async (request, options) => {
    let counted;
    try {
      counted = await client.responses.inputTokens.count(
        inputTokensBody(request) as unknown as Parameters<
          typeof client.responses.inputTokens.count
        >[0],
        { signal: options?.signal },
      );
    } catch (error) {
      throw toProviderError(error, provider, client);
    }
    return counted.input_tokens;
  };
}
