/**
 * A recording reverse proxy on 127.0.0.1: put it in front of an emulator (or any HTTP server),
 * point a client's base URL at it, and every exchange is forwarded unchanged and recorded with
 * its bodies decoded (JSON, JSONL files, multipart uploads, SSE, Gemini's resumable uploads).
 * It knows nothing of the emulator's own log: the point is an independent record of the wire.
 *
 * Absolute URLs the upstream hands out (Gemini's `x-goog-upload-url`, a file's `uri`) are
 * rewritten to the proxy's origin so the follow-up requests pass through it too.
 * @module
 */
import {
  createServer,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Buffer } from "node:buffer";

/** A body as recorded: decoded by content type, or sniffed when the type says nothing. */
export type DecodedBody =
  | { readonly kind: "empty" }
  | { readonly kind: "json"; readonly value: unknown }
  /** One entry per non-blank line; a line that is not JSON is kept as `{ unparsed }`. */
  | { readonly kind: "jsonl"; readonly lines: readonly unknown[] }
  | { readonly kind: "multipart"; readonly parts: readonly MultipartPart[] }
  | {
    readonly kind: "sse";
    readonly events: readonly { readonly event?: string; readonly data: unknown }[];
  }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "binary"; readonly bytes: number };

/** One field of a multipart/form-data body. */
export interface MultipartPart {
  readonly name: string;
  /** Set for a file field. */
  readonly filename?: string;
  readonly type?: string;
  readonly body: DecodedBody;
}

/** One request and its answer, as they crossed the proxy. */
export interface Exchange {
  /** 1-based order of arrival. */
  readonly seq: number;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** Query parameters; a `key` (Gemini's API key) is masked. */
  readonly query: Readonly<Record<string, string>>;
  readonly request: {
    readonly headers: Readonly<Record<string, string>>;
    readonly body: DecodedBody;
  };
  /** Status 0: the upstream could not be reached. */
  readonly response: {
    readonly status: number;
    readonly headers: Readonly<Record<string, string>>;
    readonly body: DecodedBody;
  };
}

/** A running proxy. */
export interface RecordingProxy {
  /** The proxy's origin, e.g. `http://127.0.0.1:40001`. */
  readonly url: string;
  /** Exchanges recorded so far, in arrival order. */
  readonly exchanges: readonly Exchange[];
  /** Maps an upstream URL (e.g. an emulator's `baseURL`) to the same URL through the proxy. */
  via(upstreamUrl: string): string;
  stop(): Promise<void>;
}

const SECRET_HEADERS = new Set([
  "authorization",
  "x-api-key",
  "x-goog-api-key",
  "api-key",
  "proxy-authorization",
]);
const SECRET_QUERY = new Set(["key", "api_key"]);

/** Masks credentials: a recording may be printed. */
function maskedHeaders(
  raw: IncomingMessage["headers"] | Record<string, string | string[] | number | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(", ") : String(value);
    out[name.toLowerCase()] = SECRET_HEADERS.has(name.toLowerCase()) ? "***" : text;
  }
  return out;
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function decodeJsonl(text: string): DecodedBody {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "").map((l) => {
    const parsed = tryJson(l);
    return parsed.ok ? parsed.value : { unparsed: l };
  });
  return { kind: "jsonl", lines };
}

function decodeSse(text: string): DecodedBody {
  const events: { event?: string; data: unknown }[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length === 0) continue;
    const joined = data.join("\n");
    const parsed = tryJson(joined);
    events.push({ ...(event ? { event } : {}), data: parsed.ok ? parsed.value : joined });
  }
  return { kind: "sse", events };
}

/** Decodes a body by its content type; without a telling type, sniffs JSON, then JSONL, then text. */
export async function decodeBody(bytes: Uint8Array, contentType = ""): Promise<DecodedBody> {
  if (bytes.length === 0) return { kind: "empty" };
  const type = contentType.toLowerCase();
  if (type.startsWith("multipart/form-data")) return await decodeMultipart(bytes, contentType);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (type.startsWith("text/event-stream")) return decodeSse(text);
  if (type.includes("jsonl") || type.includes("ndjson")) return decodeJsonl(text);
  const whole = tryJson(text);
  if (whole.ok) return { kind: "json", value: whole.value };
  if (type.includes("json") && !text.includes("\n")) return { kind: "text", text };
  const lines = decodeJsonl(text);
  if (
    lines.kind === "jsonl" && lines.lines.length > 0 &&
    lines.lines.every((l) => !(l && typeof l === "object" && "unparsed" in l))
  ) {
    return lines;
  }
  if (text.includes("\uFFFD")) return { kind: "binary", bytes: bytes.length };
  return { kind: "text", text };
}

async function decodeMultipart(bytes: Uint8Array, contentType: string): Promise<DecodedBody> {
  // The platform's own form-data parser (undici in Node, Deno's fetch): no hand-rolled boundary parsing.
  const form = await new Response(bytes as unknown as ConstructorParameters<typeof Response>[0], {
    headers: { "content-type": contentType },
  }).formData();
  const parts: MultipartPart[] = [];
  for (const [name, value] of form.entries()) {
    if (typeof value === "string") parts.push({ name, body: { kind: "text", text: value } });
    else {
      const content = new Uint8Array(await value.arrayBuffer());
      // A one-line JSONL file is also valid JSON: the file name says which it is.
      const type = /\.jsonl$/i.test(value.name) ? "application/jsonl" : value.type;
      parts.push({
        name,
        filename: value.name,
        type: value.type || undefined,
        body: await decodeBody(content, type),
      });
    }
  }
  return { kind: "multipart", parts };
}

function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks))));
    stream.on("error", reject);
  });
}

/** Headers that belong to one hop, never forwarded. */
const HOP_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "content-length",
  "host",
]);

/**
 * Starts a recording proxy in front of `upstream` (an origin such as an emulator's `url`).
 * Bodies are buffered whole: it is a test tool, not a production proxy.
 */
export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const exchanges: Exchange[] = [];
  let origin = "";
  let seq = 0;
  const sockets = new Set<Socket>();
  const rewrite = (text: string) => text.split(target.origin).join(origin);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const mySeq = ++seq;
    const requestBytes = await readAll(req);
    const url = new URL(req.url ?? "/", origin);
    const forwardHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_HEADERS.has(name)) forwardHeaders[name] = value;
    }
    forwardHeaders["content-length"] = String(requestBytes.length);
    const upstreamAnswer = await new Promise<
      { status: number; headers: IncomingMessage["headers"]; bytes: Uint8Array }
    >((resolve) => {
      const out = httpRequest(
        // A fresh connection each time: a pooled one the upstream has just closed would reset,
        // and the exchange would be recorded with no answer (seen as a rare flaky violation).
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: forwardHeaders,
          agent: false,
        },
        (answer) =>
          readAll(answer).then((bytes) =>
            resolve({ status: answer.statusCode ?? 0, headers: answer.headers, bytes })
          ),
      );
      out.on("error", () => resolve({ status: 0, headers: {}, bytes: new Uint8Array() }));
      out.end(requestBytes);
    });

    const responseHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstreamAnswer.headers)) {
      if (value === undefined || HOP_HEADERS.has(name)) continue;
      responseHeaders[name] = Array.isArray(value) ? value.map(rewrite) : rewrite(value);
    }
    const contentType = String(upstreamAnswer.headers["content-type"] ?? "");
    const textual = !contentType || /json|text|jsonl|ndjson/i.test(contentType);
    const responseBytes = textual && upstreamAnswer.bytes.length > 0
      ? new TextEncoder().encode(rewrite(new TextDecoder().decode(upstreamAnswer.bytes)))
      : upstreamAnswer.bytes;

    if (upstreamAnswer.status === 0) {
      res.socket?.destroy();
    } else {
      res.writeHead(upstreamAnswer.status, {
        ...responseHeaders,
        "content-length": String(responseBytes.length),
      });
      res.end(responseBytes);
    }

    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = SECRET_QUERY.has(k) ? "***" : v;
    exchanges.push({
      seq: mySeq,
      method: req.method ?? "GET",
      path: url.pathname,
      query,
      request: {
        headers: maskedHeaders(req.headers),
        body: await decodeBody(requestBytes, String(req.headers["content-type"] ?? "")),
      },
      response: {
        status: upstreamAnswer.status,
        headers: maskedHeaders(responseHeaders),
        body: await decodeBody(responseBytes, contentType),
      },
    });
    exchanges.sort((a, b) => a.seq - b.seq);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.socket?.destroy());
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: origin,
    exchanges,
    via: (upstreamUrl) => rewrite(upstreamUrl),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
