/**
 * Input-token counting for the `anthropic` provider: `POST /v1/messages/count_tokens`
 * (`client.messages.countTokens`). The body is the Messages body sync calls send
 * ({@link messagesBody}) less what the endpoint does not take ({@link countTokensBody}), so the
 * system prompt goes in its own `system` field and the answer schema in `output_config`, as in
 * generation.
 * @module
 */
import type Anthropic from "@anthropic-ai/sdk";
import type { CallOptions, GenerateRequest } from "../../../core/spec/provider.ts";
import { toProviderError } from "./errors.ts";
import { countTokensBody } from "./request.ts";

/** `countTokens` over the provider's client; errors are mapped as `generate` maps them. */
export function anthropicCountTokens(
  client: Anthropic,
): (request: GenerateRequest, options?: CallOptions) => Promise<number> {
  return async (request, options) => {
    let counted;
    try {
      counted = await client.messages.countTokens(
        countTokensBody(request) as unknown as Parameters<typeof client.messages.countTokens>[0],
        { signal: options?.signal },
      );
    } catch (error) {
      throw toProviderError(error, "anthropic", client);
    }
    return counted.input_tokens;
  };
}
