/**
 * The `openai-compatible` provider: any endpoint that speaks OpenAI's Chat Completions (Ollama,
 * vLLM, LM Studio, Together, Groq, …), through the `openai` SDK. `provider_options.base_url` is
 * required; the key is optional (local servers need none) and read from `OPENAI_API_KEY`, or from
 * the variable `api_key_env` names.
 *
 * The token cap goes out as `max_tokens`: Ollama, llama.cpp and most such servers read only that
 * field and ignore OpenAI's newer `max_completion_tokens` without a word, so a cap sent there
 * would cap nothing. `max_tokens_field: max_completion_tokens` sends OpenAI's field instead (a
 * server that wants it, or an OpenAI reasoning model behind a proxy).
 * @module
 */
import { chatCompletionsPlugin } from "../openai/mod.ts";

export default chatCompletionsPlugin({
  name: "openai-compatible",
  description: "Any OpenAI-compatible endpoint (base_url required; key optional).",
  envVars: ["OPENAI_API_KEY"],
  requireBaseURL: true,
  keyOptional: true,
  configurableKeyEnv: true,
  maxTokensField: "max_tokens",
  configurableMaxTokensField: true,
  noTokensReason:
    "OpenAI-compatible endpoints have no standard counting endpoint (Chat Completions has none); use a job with provider openai, anthropic or google to count",
});
