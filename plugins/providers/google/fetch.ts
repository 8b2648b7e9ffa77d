/**
 * The `fetch` the provider's SDK client calls through (`httpOptions.fetch`). The SDK's `ApiError`
 * keeps a failed response's status and body but not its headers, so a `retry-after` header would
 * be lost; here a failed response becomes Loom's error at once, headers and all (the body's
 * RetryInfo is read too, see `errors.ts`), and the SDK passes that error on unchanged.
 *
 * On Node it goes over Loom's keep-alive `node:http` transport (`_shared/node-fetch.ts`), as the
 * openai provider's does: cheaper per call than Node's fetch, and free of undici's 300-second
 * header and body timeouts (which the SDK turns off only for its own default fetch), so
 * `timeout_ms` stays the only bound on a call.
 * @module
 */
import { keepAliveFetch } from "../_shared/node-fetch.ts";
import { unpooledInit } from "../_shared/unpooled.ts";
import { googleFailure } from "./errors.ts";

/** A batch create (`models/<m>:batchGenerateContent`): billed each time it reaches Gemini. */
const BATCH_CREATE = /:batchGenerateContent(\?|$)/;

/**
 * A `fetch` for `@google/genai` that fails with Loom's error, `retryAfterMs` included, and sends
 * batch creates on a connection of their own (the SDK takes no per-call fetch options; see
 * `_shared/unpooled.ts` for why).
 */
export function googleFetch(base: typeof fetch = keepAliveFetch() ?? fetch): typeof fetch {
  return async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (init?.method === "POST" && BATCH_CREATE.test(url)) init = { ...init, ...unpooledInit() };
    const response = await base(input, init);
    if (response.ok) return response;
    const body = (await response.text().catch(() => "")).trim();
    // A google.rpc.Status body is read as such; anything else (a proxy's page) is shown in part.
    const text = body.startsWith("{")
      ? body
      : `${response.status} ${response.statusText}${body ? `: ${body.slice(0, 300)}` : ""}`;
    throw googleFailure(response.status, text, response.headers);
  };
}
