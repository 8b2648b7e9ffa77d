/**
 * The `openrouter` provider: OpenRouter's OpenAI-compatible Chat Completions, through the `openai`
 * SDK. Key: `OPENROUTER_API_KEY`. Model ids are `vendor/model`. It has no batch mode and no token counting in Loom.
 * The token cap goes out as `max_tokens`, the field OpenRouter's API reference documents.
 * @module
 */
import { chatCompletionsPlugin } from "../openai/mod.ts";

export default chatCompletionsPlugin({
  name: "openrouter",
  description: "OpenRouter (key: OPENROUTER_API_KEY); sync only.",
  envVars: ["OPENROUTER_API_KEY"],
  defaultBaseURL: "https://openrouter.ai/api/v1",
  maxTokensField: "max_tokens",
  noBatchReason: "OpenRouter has no batch API; re-run with --sync",
  noTokensReason:
    "openrouter routes to many models and has no counting endpoint; use a job with provider openai, anthropic or google to count",
});
