/**
 * Loom's provider-neutral request as an OpenAI Chat Completions body. One builder, so sync calls
 * and (later) batch files send exactly the same thing.
 * @module
 */
import type { GenerateRequest } from "../../../core/spec/provider.ts";

/** The Chat Completions body for a request. */
export function chatCompletionBody(request: GenerateRequest): Record<string, unknown> {
  const { max_tokens, ...params } = request.params;
  const messages = [
    ...(request.system ? [{ role: "system", content: request.system }] : []),
    ...request.messages.map((m) => ({ role: m.role, content: m.content })),
  ];
  return {
    model: request.model,
    messages,
    ...params,
    // `max_tokens` is deprecated in Chat Completions and refused by reasoning models.
    ...(max_tokens === undefined ? {} : { max_completion_tokens: max_tokens }),
  };
}
