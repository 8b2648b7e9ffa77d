/**
 * A `fetch` for the providers' SDKs on Node, over `node:http`/`node:https` with keep-alive
 * agents. Node's built-in fetch (undici) spends about 0.35 ms of CPU on every small JSON call
 * (web streams, spec bookkeeping): at a thousand calls a second that, not the network, is what
 * limits a sync run. This one hands the SDK an ordinary `Response`, read whole when the answer is
 * small (a content-length up to 4 MB, or JSON without one: every sync answer), streamed otherwise.
 *
 * What it does not handle goes to the global fetch unchanged: bodies other than text or bytes
 * (multipart uploads, streams), `Request` objects, redirects, and every call when Node is told to
 * use the environment's proxy (`NODE_USE_ENV_PROXY`). Deno and Bun keep their own fetch.
 * @module
 */
import http from "node:http";
import https from "node:https";
import process from "node:process";
import { Readable } from "node:stream";
import zlib from "node:zlib";

/** Answers up to this size (with a content-length) are read whole before the SDK sees them. */
const BUFFER_LIMIT = 4 * 1024 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([204, 205, 304]);

/** A keep-alive `fetch` on Node; undefined elsewhere (the runtime's own is used). */
export function keepAliveFetch(): typeof fetch | undefined {
  if ("Deno" in globalThis || "Bun" in globalThis) return undefined;
  if (process.env.NODE_USE_ENV_PROXY) return undefined;
  const agents = {
    "http:": new http.Agent({ keepAlive: true }),
    "https:": new https.Agent({ keepAlive: true }),
  };
  const fallback = (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    globalThis.fetch(input, init);

  return (input, init) => {
    if (typeof input !== "string" && !(input instanceof URL)) return fallback(input, init);
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      return fallback(input, init); // rejects as fetch does
    }
    const body = init?.body;
    if (url.protocol !== "http:" && url.protocol !== "https:") return fallback(input, init);
    if (body != null && typeof body !== "string" && !(body instanceof Uint8Array)) {
      return fallback(input, init);
    }
    const signal = init?.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason);

    const headers: Record<string, string> = {};
    const given = init?.headers;
    (given instanceof Headers ? given : new Headers(given)).forEach((
      value,
      name,
    ) => (headers[name] = value));
    if (typeof body === "string") {
      headers["content-length"] = String(Buffer.byteLength(body));
      headers["content-type"] ??= "text/plain;charset=UTF-8";
    } else if (body) headers["content-length"] = String(body.byteLength);
    const method = (init?.method ?? "GET").toUpperCase();

    return new Promise<Response>((resolve, reject) => {
      const transport = url.protocol === "https:" ? https : http;
      const agent = agents[url.protocol as keyof typeof agents];
      const req = transport.request(url, { method, headers, agent, signal }, (res) => {
        const status = res.statusCode ?? 0;
        if (REDIRECTS.has(status) && init?.redirect !== "manual" && res.headers.location) {
          res.resume();
          resolve(fallback(input, init));
          return;
        }
        const answer = (content: ConstructorParameters<typeof Response>[0]) => {
          try {
            const responseHeaders = new Headers();
            for (let i = 0; i < res.rawHeaders.length; i += 2) {
              responseHeaders.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
            }
            const response = new Response(content, {
              status,
              statusText: res.statusMessage,
              headers: responseHeaders,
            });
            Object.defineProperty(response, "url", { value: url.href });
            resolve(response);
          } catch (error) {
            reject(error);
          }
        };
        const cut = () =>
          reject(
            signal?.aborted
              ? signal.reason
              : new Error("the connection closed before the answer was complete"),
          );
        if (NULL_BODY.has(status) || method === "HEAD") {
          res.resume();
          answer(null);
          return;
        }
        const encoding = (res.headers["content-encoding"] ?? "identity").toLowerCase();
        const length = Number(res.headers["content-length"] ?? NaN);
        const small = Number.isFinite(length)
          ? length <= BUFFER_LIMIT
          : /^application\/json\s*(;|$)/i.test(res.headers["content-type"] ?? "");
        if (small && encoding === "identity") {
          // A socket's chunks are never backed by a SharedArrayBuffer; saying so lets Deno's
          // Response type (which refuses shared memory) take them.
          const chunks: Buffer<ArrayBuffer>[] = [];
          res.on("data", (chunk: Buffer<ArrayBuffer>) => chunks.push(chunk));
          res.on("end", () => answer(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
          res.on("error", cut);
          res.on("close", () => res.complete || cut());
          return;
        }
        const decoder = encoding === "gzip" || encoding === "x-gzip"
          ? zlib.createGunzip()
          : encoding === "deflate"
          ? zlib.createInflate()
          : encoding === "br"
          ? zlib.createBrotliDecompress()
          : undefined;
        if (decoder) res.on("error", (error) => decoder.destroy(error)).pipe(decoder);
        answer(Readable.toWeb(decoder ?? res) as ReadableStream<Uint8Array>);
      });
      req.on("error", reject);
      req.end(body ?? undefined);
    });
  };
}
