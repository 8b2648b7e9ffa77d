/**
 * A request as a Chat Completions body, and a Chat Completion as Loom's answer: the same for a
 * live call and for a line of a batch.
 * @module
 */
import type { GenerateRequest, GenerateResult } from "loom-batch/plugin";

/** The request body: OpenAI's chat completions fields that compatible servers read. */
export function chatBody(request: GenerateRequest): Record<string, unknown> {
  const { max_tokens, temperature, top_p, stop, seed } = request.params;
  return {
    model: request.model,
    messages: [
      ...(request.system ? [{ role: "system", content: request.system }] : []),
      ...request.messages,
    ],
    // `max_tokens`, not `max_completion_tokens`: most compatible servers read only this one.
    max_tokens,
    temperature,
    top_p,
    stop,
    seed,
    ...(request.responseSchema && {
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: request.responseSchema },
      },
    }),
  };
}

interface Completion {
  model?: string;
  choices?: Array<{
    finish_reason?: string;
    message?: { content?: string | null; refusal?: string | null };
  }>;
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    completion_tokens_details?: { reasoning_tokens?: number };
  };
}

/** The answer a Chat Completion holds, or undefined when it holds none. */
export function chatResult(body: unknown): GenerateResult | undefined {
  const completion = body as Completion | undefined;
  const choice = completion?.choices?.[0];
  if (!choice?.message) return undefined;
  const usage = completion?.usage;
  return {
    text: choice.message.content ?? "",
    finishReason: choice.finish_reason,
    truncated: choice.finish_reason === "length",
    ...(choice.message.refusal ? { refusal: choice.message.refusal } : {}),
    usage: {
      inputTokens: usage?.prompt_tokens,
      outputTokens: usage?.completion_tokens,
      reasoningTokens: usage?.completion_tokens_details?.reasoning_tokens,
    },
    model: completion?.model,
  };
}
