/**
 * A connection of its own for requests that must never go out twice: a batch create is billed
 * each time it reaches the provider. Deno's fetch, when the pooled keep-alive connection a request
 * went out on closes before the answer, sends the request again on a new connection, POST or not
 * (seen with Deno 2.9 against the emulator: a provider that carried a create out and then reset
 * the connection got a second create, a second billed batch). A request on a connection that
 * nothing else used is not resent: it fails, and Loom treats that create as in doubt. Node's
 * transports (Loom's `node:http` fetch, undici) never resend a request, so there this adds nothing.
 * @module
 */

/** What Loom uses of `Deno.createHttpClient`. */
interface DenoHttp {
  createHttpClient(options: { poolMaxIdlePerHost?: number }): unknown;
}

let client: unknown;

/** Fetch init members a call may add (the SDKs set the method, headers, body and signal). */
export type ExtraInit = Omit<RequestInit, "signal" | "body" | "headers" | "method">;

/**
 * `fetch` init members that send a request on a fresh connection (Deno's `client` with no idle
 * pool); empty on other runtimes. Merge them into the init of a create call.
 */
export function unpooledInit(): ExtraInit {
  const deno = (globalThis as { Deno?: Partial<DenoHttp> }).Deno;
  if (typeof deno?.createHttpClient !== "function") return {};
  client ??= deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  return { client } as ExtraInit;
}
