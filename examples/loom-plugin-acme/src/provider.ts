/**
 * The `acme` provider: any endpoint speaking OpenAI's Chat Completions and Batch APIs, called
 * with `fetch` (no SDK). `provider_options.base_url` names the endpoint; the key comes from
 * `--api-key`, `ACME_API_KEY` or `.env` (the core finds it and hands it to `create` as
 * `options.apiKey`). No token counting.
 * @module
 */
import {
  definePlugin,
  LoomProviderError,
  LoomUsageError,
  type ProviderV1,
} from "loom-batch/plugin";
import { batchApi } from "./batch.ts";
import { chatBody, chatResult } from "./chat.ts";
import { type Endpoint, hideKey, sendJSON } from "./http.ts";

/** The environment variable that holds the key. */
export const KEY_VAR = "ACME_API_KEY";
const DEFAULT_TIMEOUT_MS = 60_000;

/** The `acme` provider plugin. */
export const acme = definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "acme",
  description: "Example package provider: an OpenAI-compatible endpoint, live or batch (fetch).",
  apiKey: { envVars: () => [KEY_VAR] },
  create(options, context): ProviderV1 {
    const baseURL = baseURLOf(options.base_url);
    // The core resolves the key before `create`; a direct caller (a test) may rely on the env.
    const apiKey = typeof options.apiKey === "string" ? options.apiKey : context.env[KEY_VAR];
    if (!apiKey) {
      throw new LoomUsageError(`acme: no API key: set ${KEY_VAR} or pass --api-key`);
    }
    const endpoint: Endpoint = {
      baseURL,
      apiKey,
      timeoutMs: timeoutOf(options.timeout_ms),
      keyVar: KEY_VAR,
    };
    return {
      specificationVersion: "loom.provider.v1",
      name: "acme",
      capabilities: { sync: true, batch: true, tokens: false },
      noTokensReason: "the acme example provider cannot count tokens",
      // Two endpoints may answer differently: they never share cached answers.
      cacheIdentity: { base_url: baseURL },
      async generate(request, call) {
        const body = await sendJSON(endpoint, "/chat/completions", {
          method: "POST",
          json: chatBody(request),
          signal: call?.signal,
        });
        const result = chatResult(body);
        if (result) return result;
        const shown = hideKey(JSON.stringify(body), endpoint).slice(0, 200);
        throw new LoomProviderError(`acme: the answer has no choices[0].message: ${shown}`);
      },
      batch: batchApi(endpoint),
    };
  },
});

/** `base_url` without its trailing slash; required, and an http(s) URL. */
function baseURLOf(value: unknown): string {
  const text = typeof value === "string" ? value.trim() : "";
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new LoomUsageError(
      `acme: provider_options.base_url must be the endpoint's http(s) URL, such as ` +
        `http://localhost:8080/v1 (got ${text === "" ? "none" : JSON.stringify(text)}); ` +
        "set it in the job or pass --base-url",
    );
  }
  return text.replace(/\/+$/, "");
}

function timeoutOf(value: unknown): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new LoomUsageError(
      `acme: provider_options.timeout_ms must be a positive whole number of milliseconds`,
    );
  }
  return value;
}
