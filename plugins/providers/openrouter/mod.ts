/**
 * The `openrouter` provider: OpenRouter's OpenAI-compatible Chat Completions, through the `openai`
 * SDK. Key: `OPENROUTER_API_KEY`. Model ids are `vendor/model`. The token cap goes out as
 * `max_tokens`, the field OpenRouter's API reference documents. Batch mode uses OpenRouter's
 * Batch API (`./batch.ts`, inline requests built in `./body.ts`, over the same client);
 * `batch_path` says where it is when not at `<base_url>/batches`. No token counting in Loom.
 * @module
 */
import { chatCompletionsPlugin } from "../openai/mod.ts";
import { checkBatchPath, openrouterBatchApi } from "./batch.ts";

export default chatCompletionsPlugin({
  name: "openrouter",
  description: "OpenRouter (key: OPENROUTER_API_KEY); sync and batch.",
  envVars: ["OPENROUTER_API_KEY"],
  defaultBaseURL: "https://openrouter.ai/api/v1",
  maxTokensField: "max_tokens",
  batchApi: {
    options: ["batch_path"],
    create: (client, options) =>
      openrouterBatchApi(client, { path: checkBatchPath(options.batch_path) }),
  },
  noTokensReason:
    "openrouter routes to many models and has no counting endpoint; use a job with provider openai, anthropic or google to count",
});
