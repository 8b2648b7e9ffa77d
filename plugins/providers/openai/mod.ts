/**
 * The `openai` provider: Chat Completions through the official `openai` SDK. The key comes from
 * `--api-key`, `OPENAI_API_KEY` or `.env`. Options (`provider_options`): `base_url` (another
 * endpoint, e.g. the emulator), `timeout_ms` (per call, default 10 minutes).
 *
 * The same code serves every endpoint that speaks the Chat Completions protocol (`openrouter`,
 * `openai-compatible`) through {@link chatCompletionsPlugin}; `openai` itself has OpenAI's Batch
 * API (`./batch.ts`) and token counting (`./tokens.ts`), `openrouter` its own inline batches
 * (`../openrouter/batch.ts`, over the same client). The SDK's own retries are
 * off: Loom retries transient errors itself, the same way for every provider, and stops the run
 * on errors no retry can fix.
 * @module
 */
import type OpenAI from "openai";
import { LoomUsageError } from "../../../core/base/errors.ts";
import { definePlugin, type PluginDefinition } from "../../../core/plugins/plugin.ts";
import type { BatchApi, ProviderV1 } from "../../../core/spec/provider.ts";
import { keepAliveFetch } from "../_shared/node-fetch.ts";
import { checkConnectionOptions, DEFAULT_TIMEOUT_MS } from "../_shared/options.ts";
import { answerError, type CompletionWithErrors } from "./answer-error.ts";
import { openaiBatchApi } from "./batch.ts";
import { toProviderError } from "./errors.ts";
import {
  chatCompletionBody,
  chatCompletionResult,
  chatParamProblems,
  type MaxTokensField,
} from "./request.ts";
import { sentSchema, strictNote, strictVerdict } from "./strict.ts";
import { openaiCountTokens } from "./tokens.ts";

/** How one Chat Completions endpoint differs from another. */
export interface ChatCompletionsConfig {
  readonly name: string;
  readonly description: string;
  /** Environment variables holding the key (by default; `api_key_env` may name another). */
  readonly envVars: readonly string[];
  /** The endpoint when `base_url` is not given (default: the SDK's, which reads OPENAI_BASE_URL). */
  readonly defaultBaseURL?: string;
  /** `base_url` must be given (an endpoint of the user's own). */
  readonly requireBaseURL?: boolean;
  /** Whether the endpoint works without a key (a local server). Default false. */
  readonly keyOptional?: boolean;
  /** Accept `api_key_env` to name the key's variable. */
  readonly configurableKeyEnv?: boolean;
  /** Why batch mode is unavailable, when it never will be. */
  readonly noBatchReason?: string;
  /** The endpoint has OpenAI's Batch API (Files + Batches), so batch mode is available. */
  readonly batch?: boolean;
  /**
   * The endpoint's own batch API, built over the same client (OpenRouter's inline batches), with
   * the option names it adds to `provider_options`.
   */
  readonly batchApi?: {
    readonly options: readonly string[];
    create(client: OpenAI, options: Readonly<Record<string, unknown>>): BatchApi;
  };
  /** Check parameters against OpenAI's own models (reasoning models refuse temperature, say). */
  readonly openaiModels?: boolean;
  /** The endpoint has OpenAI's input-token counting (`POST /v1/responses/input_tokens`). */
  readonly tokens?: boolean;
  /** Why token counting is unavailable, when the endpoint has no counting. */
  readonly noTokensReason?: string;
  /** The request field the endpoint reads the token cap from (default `max_completion_tokens`, OpenAI's). */
  readonly maxTokensField?: MaxTokensField;
  /** Accept `max_tokens_field` to choose that field (endpoints differ on which one they read). */
  readonly configurableMaxTokensField?: boolean;
}

const MAX_TOKENS_FIELDS: readonly MaxTokensField[] = ["max_tokens", "max_completion_tokens"];

/**
 * Checks the options: the shared connection options, `api_key_env` and `max_tokens_field` where
 * allowed, `base_url` where required.
 */
function checkOptions(config: ChatCompletionsConfig, options: Readonly<Record<string, unknown>>) {
  const extra = [
    ...(config.batchApi?.options ?? []),
    ...(config.configurableKeyEnv ? ["api_key_env"] : []),
    ...(config.configurableMaxTokensField ? ["max_tokens_field"] : []),
  ];
  const checked = checkConnectionOptions(config.name, options, extra);
  if (checked.base_url === undefined && config.requireBaseURL) {
    throw new LoomUsageError(
      `${config.name}: base_url is required (the endpoint, e.g. http://localhost:11434/v1)`,
    );
  }
  const { api_key_env } = checked;
  if (
    api_key_env !== undefined &&
    (typeof api_key_env !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(api_key_env))
  ) {
    throw new LoomUsageError(`${config.name}: api_key_env must be an environment variable name`);
  }
  const field = checked.max_tokens_field;
  if (field !== undefined && !MAX_TOKENS_FIELDS.includes(field as MaxTokensField)) {
    throw new LoomUsageError(
      `${config.name}: max_tokens_field must be ${
        MAX_TOKENS_FIELDS.join(" or ")
      } (the request field the server reads the token cap from)`,
    );
  }
  return {
    ...checked,
    max_tokens_field: (field as MaxTokensField | undefined) ?? config.maxTokensField ??
      "max_completion_tokens",
  };
}

/** A provider plugin for an endpoint that speaks Chat Completions. */
export function chatCompletionsPlugin(config: ChatCompletionsConfig): PluginDefinition<"provider"> {
  return definePlugin({
    apiVersion: 1,
    kind: "provider",
    name: config.name,
    description: config.description,
    apiKey: {
      envVars: (
        options,
      ) => (typeof options.api_key_env === "string" ? [options.api_key_env] : config.envVars),
      required: () => !config.keyOptional,
    },
    async create(options): Promise<ProviderV1> {
      const { base_url, timeout_ms, max_tokens_field } = checkOptions(config, options);
      const { default: OpenAI } = await import("openai");
      const nodeFetch = keepAliveFetch();
      const baseURL = base_url ?? config.defaultBaseURL;
      const client = new OpenAI({
        // A local server without auth still needs some string here; it is never sent anywhere else.
        apiKey: typeof options.apiKey === "string" ? options.apiKey : "no-key",
        baseURL,
        maxRetries: 0,
        timeout: timeout_ms ?? DEFAULT_TIMEOUT_MS,
        // Node's own fetch costs more CPU per call than all the rest of a sync row: see node-fetch.ts.
        ...(nodeFetch ? { fetch: nodeFetch } : {}),
      });
      return {
        specificationVersion: "loom.provider.v1",
        name: config.name,
        capabilities: {
          sync: true,
          batch: config.batch === true || config.batchApi !== undefined,
          tokens: config.tokens === true,
        },
        ...(config.noBatchReason ? { noBatchReason: config.noBatchReason } : {}),
        ...(config.tokens ? { countTokens: openaiCountTokens(client, config.name) } : {}),
        ...(!config.tokens && config.noTokensReason
          ? { noTokensReason: config.noTokensReason }
          : {}),
        // Where the cap goes changes the answer on servers that read only one of the fields.
        cacheIdentity: {
          ...(base_url ? { base_url } : {}),
          ...(config.configurableMaxTokensField ? { max_tokens_field } : {}),
        },
        ...(config.batch
          ? {
            batch: openaiBatchApi(client, {
              provider: config.name,
              keyVariable: typeof options.api_key_env === "string"
                ? options.api_key_env
                : config.envVars[0],
            }),
          }
          : {}),
        ...(config.batchApi ? { batch: config.batchApi.create(client, options) } : {}),
        validateParams: (params, context) =>
          chatParamProblems(params, context, config.openaiModels === true),
        // Only OpenAI's own endpoint is known to enforce the strict subset; OpenRouter and
        // compatible servers get the same `strict` flag but no note (their routing or server
        // decides what strict means there).
        ...(config.openaiModels
          ? {
            jobNotes: (
              _params,
              context,
            ) => (context.schema ? [strictNote(strictVerdict(sentSchema(context.schema)))] : []),
          }
          : {}),
        async generate(request, callOptions) {
          let completion;
          try {
            completion = await client.chat.completions.create(
              chatCompletionBody(request, max_tokens_field) as unknown as
                & Parameters<typeof client.chat.completions.create>[0]
                & { stream?: false },
              { signal: callOptions?.signal },
            );
          } catch (error) {
            throw toProviderError(error, config.name, client);
          }
          // OpenRouter reports a failure after generation started inside an HTTP 200: never an answer.
          const failure = answerError(completion as CompletionWithErrors, config.name);
          if (failure) throw failure;
          // The result names the model that answered (an OpenRouter fallback, a dated snapshot).
          return chatCompletionResult(completion);
        },
      };
    },
  });
}

export default chatCompletionsPlugin({
  name: "openai",
  description: "OpenAI Chat Completions (key: OPENAI_API_KEY).",
  envVars: ["OPENAI_API_KEY"],
  openaiModels: true,
  batch: true,
  tokens: true,
});
