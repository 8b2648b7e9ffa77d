/**
 * The `acme` provider: any endpoint speaking OpenAI's Chat Completions, called with `fetch` (no
 * SDK). `provider_options.base_url` names the endpoint; the key comes from `--api-key`,
 * `ACME_API_KEY` or `.env` (the core finds it and hands it to `create` as `options.apiKey`).
 * Sync only: no batch API, no token counting.
 * @module
 */
import {
  definePlugin,
  type GenerateRequest,
  type GenerateResult,
  LoomProviderError,
  LoomUsageError,
  type ProviderV1,
} from "loom-batch/plugin";

/** The environment variable that holds the key. */
export const KEY_VAR = "ACME_API_KEY";
const DEFAULT_TIMEOUT_MS = 60_000;

/** The `acme` provider plugin. */
export const acme = definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "acme",
  description: "Example package provider: an OpenAI-compatible chat completions endpoint (fetch).",
  apiKey: { envVars: () => [KEY_VAR] },
  create(options, context): ProviderV1 {
    const baseURL = baseURLOf(options.base_url);
    // The core resolves the key before `create`; a direct caller (a test) may rely on the env.
    const apiKey = typeof options.apiKey === "string" ? options.apiKey : context.env[KEY_VAR];
    if (!apiKey) {
      throw new LoomUsageError(`acme: no API key: set ${KEY_VAR} or pass --api-key`);
    }
    const timeoutMs = timeoutOf(options.timeout_ms);
    return {
      specificationVersion: "loom.provider.v1",
      name: "acme",
      capabilities: { sync: true, batch: false, tokens: false },
      noBatchReason: "the acme example provider has no batch API: run with --sync",
      noTokensReason: "the acme example provider cannot count tokens",
      // Two endpoints may answer differently: they never share cached answers.
      cacheIdentity: { base_url: baseURL },
      generate: (request, call) => generate(baseURL, apiKey, timeoutMs, request, call?.signal),
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

/** The request body: OpenAI's chat completions fields that compatible servers read. */
function bodyOf(request: GenerateRequest): Record<string, unknown> {
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

async function generate(
  baseURL: string,
  apiKey: string,
  timeoutMs: number,
  request: GenerateRequest,
  signal?: AbortSignal,
): Promise<GenerateResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${baseURL}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(bodyOf(request)),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    // Read inside the try: a connection lost mid-answer is retried like one never made.
    text = await res.text();
  } catch (error) {
    // The run was interrupted: the abort goes up as it is, not as a provider failure.
    if (signal?.aborted) throw signal.reason ?? error;
    // Node's fetch says "fetch failed"; the cause says why (ECONNREFUSED, a reset, …).
    const cause = (error as { cause?: { message?: unknown } }).cause?.message;
    const why = timeout.aborted
      ? `no answer within ${timeoutMs} ms (allow more with provider_options.timeout_ms)`
      : `${(error as Error).message}${typeof cause === "string" ? `: ${cause}` : ""}`;
    throw new LoomProviderError(`acme: calling ${safeURL(baseURL)} failed: ${why}`, {
      retryable: true,
      cause: error,
    });
  }
  const body = parseJSON(text);
  if (!res.ok) throw httpError(res, body, apiKey);
  return resultOf(body, apiKey);
}

/** An HTTP failure in Loom's terms: a refused key stops the run, a transient fault is retried. */
function httpError(res: Response, body: unknown, apiKey: string): LoomProviderError {
  const said = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
  const detail = typeof said === "string" ? said.slice(0, 500) : res.statusText;
  const message = hideKey(`acme: HTTP ${res.status}: ${detail}`, apiKey);
  const status = res.status;
  if (status === 401 || status === 403) {
    return new LoomProviderError(`${message} (check ${KEY_VAR})`, { status, fatal: true });
  }
  if (status === 429 || status === 408 || status >= 500) {
    return new LoomProviderError(message, {
      status,
      retryable: true,
      retryAfterMs: retryAfterMs(res.headers),
    });
  }
  // The same model (or path) is wrong for every row.
  if (status === 404) {
    return new LoomProviderError(`${message} (check the model)`, { status, fatal: true });
  }
  // Any other refusal fails the row; many rows refused alike stop the run.
  return new LoomProviderError(message, { status, refused: true });
}

/** The wait the server asked for: `retry-after-ms`, else `retry-after` (seconds or a date). */
export function retryAfterMs(headers: Headers): number | undefined {
  const ms = Number(headers.get("retry-after-ms") ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const after = headers.get("retry-after");
  if (after === null) return undefined;
  const seconds = Number(after);
  if (after.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
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

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // an error page of a proxy, say: the status tells what happened
  }
}

function resultOf(body: unknown, apiKey: string): GenerateResult {
  const completion = body as Completion | undefined;
  const choice = completion?.choices?.[0];
  if (!choice?.message) {
    const shown = hideKey(JSON.stringify(body) ?? "no JSON", apiKey).slice(0, 200);
    throw new LoomProviderError(`acme: the answer has no choices[0].message: ${shown}`);
  }
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

/** Some servers echo the key they refused: it never reaches a message. */
function hideKey(text: string, apiKey: string): string {
  return apiKey.length >= 4 ? text.replaceAll(apiKey, "***") : text;
}

/** A URL for messages: no user name or password from `https://user:pass@host`. */
function safeURL(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.href.replace(/\/+$/, "");
}
