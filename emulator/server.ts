/**
 * The emulator's HTTP plumbing, shared by every provider: one server on 127.0.0.1, routing,
 * authentication, fault rules, latency, the request log and clean shutdown. A provider module
 * supplies its routes, its error shape and its credential check.
 * @module
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { type Clock, ManualClock } from "./clock.ts";
import { type FaultAction, FaultEngine, type FaultRule } from "./faults.ts";
import { type LoggedRequest, maskHeaders, RequestLog } from "./log.ts";
import { BatchProgress, type BatchSchedule } from "./schedule.ts";

/** The providers the emulator speaks. */
export type ProviderName = "openai" | "anthropic" | "gemini" | "openrouter" | "compatible";

/** Faults a provider answers itself, on routes that answer only (see {@link ProviderEmulator.answerFault}). */
export type AnswerFault = Extract<FaultAction, { kind: "error-in-choice" | "model-down" }>;
const ANSWER_FAULTS = new Set(["reply", "error-in-choice", "model-down"]);

/** A per-batch scenario: how one batch (or every batch) misbehaves. Providers interpret it. */
export interface BatchScenario {
  /** The Nth batch created on this emulator (1-based); absent means every batch. */
  nth?: number;
  /** How the batch ends: normally (default), by expiring with partial results, or by failing validation. */
  end?: "complete" | "expire" | "fail";
  /** With `end: "expire"`: requests finished before the window closed (default half). */
  processed?: number;
  /** Requests whose prompt contains this text fail individually. */
  failPromptContains?: string;
  /** Every request fails (OpenAI reports "completed" with only an error file). */
  onlyErrors?: boolean;
  /** Malformed lines inserted into the result file. */
  malformedLines?: number;
  /** Blank lines inserted into the result file. */
  blankLines?: number;
  /** OpenAI: an uploaded file is invisible to `batches.create` for this many attempts. */
  fileInvisibleFor?: number;
  /**
   * OpenRouter: batch cancellation is not enabled for the organization ("other organizations get
   * 403"), so a cancel is refused with 403.
   */
  cancelForbidden?: boolean;
}

/** Options of {@link startEmulator}. */
export interface EmulatorOptions {
  provider: ProviderName;
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** The API key clients must send (default `test-key`). */
  apiKey?: string;
  /** Added before every answer. */
  latencyMs?: number;
  faults?: FaultRule[];
  /** Batch lifecycle pace (default: one state per poll). */
  schedule?: BatchSchedule;
  /** Time source (default a manual clock that starts at a fixed instant). */
  clock?: Clock;
  /** Batch scenarios, matched by `nth`. */
  batches?: BatchScenario[];
  /** Model ids accepted; `"any"` accepts every id (default: the provider's known list). */
  models?: readonly string[] | "any";
  /** Provider limits to override (names per provider, e.g. `{ maxRequests: 10 }`). */
  limits?: Record<string, number>;
  /**
   * OpenAI: the path of OpenAI's OpenAPI definition that every request body is validated
   * against (default `$LOOM_OPENAI_SPEC`, else `shared/reference/specs/openai-openapi.yaml`
   * beside the repository; the emulator refuses to start when it is missing). `false` turns
   * the contract check off: an installed `loom-batch` has no such file, so plugin authors pass a
   * path or `false`.
   */
  openaiSpec?: string | false;
}

/** An HTTP error a handler throws; rendered in the provider's error shape. */
export class HttpError extends Error {
  readonly status: number;
  /** Provider-specific error type or code (`invalid_request_error`, `not_found_error`, …). */
  readonly code?: string;
  /** Extra members for the error object (OpenAI `param`, …). */
  readonly extra?: Record<string, unknown>;

  constructor(status: number, message: string, code?: string, extra?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

/** A request as handlers see it. */
export interface EmulatorRequest {
  method: string;
  path: string;
  /** Named groups of the route's pattern. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string>;
  raw: Uint8Array<ArrayBuffer>;
  /** The body parsed as JSON; a 400 in the provider's shape when it is not JSON. */
  json<T = Record<string, unknown>>(): T;
  /**
   * Set when a `reply` fault applies (only on routes that answer, see {@link Route.answers}): the
   * text the answer's content must be, instead of the generated one.
   */
  replyText?: string;
}

/** What a handler answers. */
export interface Reply {
  status?: number;
  /** Serialised as JSON. */
  json?: unknown;
  /** Sent as is (a file's bytes, a JSONL stream). */
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** One route of a provider. */
export interface Route {
  method: string;
  /** Matched against the whole path; named groups become `params`. */
  path: RegExp;
  /**
   * The route generates a model answer (a sync generate endpoint): `reply` fault rules apply to
   * it, and its handler honours {@link EmulatorRequest.replyText}. Other routes never see them.
   */
  answers?: boolean;
  handle(req: EmulatorRequest): Reply | Promise<Reply>;
}

/** What every provider module provides to the server. */
export interface ProviderEmulator {
  readonly routes: readonly Route[];
  /** The provider's error body (and headers) for a status. */
  error(status: number, message: string, code?: string, extra?: Record<string, unknown>): Reply;
  /** Null when the request carries the right credentials, else the error to answer with. */
  authenticate(req: EmulatorRequest): HttpError | null;
  /** The prompt texts a request carries, for `promptContains` fault rules. */
  prompts(req: EmulatorRequest): string[];
  /** Headers every answer carries (a request id, say). */
  headers?(): Record<string, string>;
  /** Answers an `error-in-200` fault (OpenRouter); others treat it as a 500. */
  errorIn200?(message: string, code: number): Reply;
  /** Answers an `error-in-choice` or `model-down` fault on a route that answers (OpenRouter); others treat it as a 500. */
  answerFault?(action: AnswerFault, req: EmulatorRequest): Reply | Promise<Reply>;
}

/** Shared state a provider module builds on. */
export interface EmulatorContext {
  readonly options: EmulatorOptions;
  readonly clock: Clock;
  readonly log: RequestLog;
  readonly progress: BatchProgress;
  /** The server's origin, e.g. `http://127.0.0.1:43121` (set once listening). */
  origin: string;
  /** Next value of a named counter (ids, batch numbers), starting at 1. */
  next(counter: string): number;
  /** The scenario for the Nth batch created (1-based). */
  scenario(nth: number): BatchScenario;
  /** Whether a model id is accepted. */
  acceptsModel(model: string, known: readonly string[]): boolean;
  /** A limit: the override when given, else the provider's default. */
  limit(name: string, fallback: number): number;
  /**
   * The text of the `reply` fault that applies to one batch line when its batch runs, if any:
   * the line is matched as a `POST` to `path` (the endpoint it stands for) carrying `prompts`,
   * inside batch `batch`. Counts against the rules it matches, as a request would. Optional so
   * that a context built by hand (a unit test) needs none.
   */
  replyFor?(line: { path: string; prompts: readonly string[]; batch: string }): string | undefined;
  /**
   * Called once per batch list request: whether a batch (by the id its create answered, `id` or
   * `name`) is listed yet. A `lost` fault's `listedAfter` hides a batch for that many list calls.
   * Optional so that a context built by hand needs none.
   */
  listing?(): (id: string) => boolean;
}

/** A running emulator. */
export interface Emulator {
  readonly provider: ProviderName;
  /** Origin of the server, e.g. `http://127.0.0.1:43121`. */
  readonly url: string;
  /** The base URL to give the provider's official SDK. */
  readonly baseURL: string;
  readonly port: number;
  readonly apiKey: string;
  readonly log: RequestLog;
  readonly faults: FaultEngine;
  readonly clock: Clock;
  /** Moves a batch (or every batch, without an id) on by `n` lifecycle steps. */
  step(batchId?: string, n?: number): void;
  /** Stops the server and closes every connection. */
  stop(): Promise<void>;
}

/** Where each provider's SDK expects the API below the origin. */
const BASE_PATHS: Record<ProviderName, string> = {
  openai: "/v1",
  anthropic: "",
  gemini: "",
  openrouter: "/api/v1",
  compatible: "/v1",
};

/** Largest request body read (a little over Anthropic's 256 MB batch limit). */
const MAX_BODY = 300 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  if (Number(req.headers["content-length"]) > MAX_BODY) {
    throw new HttpError(413, "Request too large");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Uint8Array).length;
    if (size > MAX_BODY) throw new HttpError(413, "Request too large");
    chunks.push(chunk as Uint8Array);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Sends a reply and records it in the log entry: its status (0 when undelivered) and JSON answer. */
function send(
  res: ServerResponse,
  reply: Reply,
  extraHeaders: Record<string, string>,
  entry: LoggedRequest,
): void {
  entry.status = deliver(res, reply, extraHeaders);
  if (entry.status !== 0 && reply.json !== undefined) entry.answer = reply.json;
}

function deliver(res: ServerResponse, reply: Reply, extraHeaders: Record<string, string>): number {
  // The client gave up (a timeout) or the emulator is stopping: nothing was delivered.
  if (res.destroyed || res.socket?.destroyed) return 0;
  const status = reply.status ?? 200;
  const headers: Record<string, string> = { ...extraHeaders, ...reply.headers };
  let body: string | Uint8Array = "";
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    headers["content-type"] ??= "application/json";
  } else if (reply.body !== undefined) body = reply.body;
  res.writeHead(status, headers);
  res.end(body);
  return status;
}

/** Loads a provider module lazily, so a test of one provider loads only its code. */
async function providerModule(name: ProviderName, ctx: EmulatorContext): Promise<ProviderEmulator> {
  switch (name) {
    case "openai":
      return (await import("./providers/openai.ts")).createOpenAI(ctx);
    case "anthropic":
      return (await import("./providers/anthropic.ts")).createAnthropic(ctx);
    case "gemini":
      return (await import("./providers/gemini.ts")).createGemini(ctx);
    case "openrouter":
      return (await import("./providers/openrouter.ts")).createOpenRouter(ctx);
    case "compatible":
      return (await import("./providers/compatible.ts")).createCompatible(ctx);
  }
}

/** Starts an emulator for one provider on 127.0.0.1. */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const clock = options.clock ?? new ManualClock();
  const log = new RequestLog();
  const faults = new FaultEngine(options.faults);
  const progress = new BatchProgress(options.schedule ?? { advance: "polls", polls: 1 }, clock);
  const apiKey = options.apiKey ?? "test-key";
  const counters = new Map<string, number>();
  /** Batches a `lost` fault created, and how many more list calls leave them out. */
  const unlisted = new Map<string, number>();
  const ctx: EmulatorContext = {
    options: { ...options, apiKey },
    clock,
    log,
    progress,
    origin: "",
    next(counter) {
      const n = (counters.get(counter) ?? 0) + 1;
      counters.set(counter, n);
      return n;
    },
    scenario(nth) {
      return options.batches?.find((s) => s.nth === nth) ??
        options.batches?.find((s) => s.nth === undefined) ?? {};
    },
    acceptsModel(model, known) {
      const accepted = options.models ?? known;
      return accepted === "any" || accepted.includes(model);
    },
    limit(name, fallback) {
      return options.limits?.[name] ?? fallback;
    },
    listing() {
      const hidden = new Set<string>();
      for (const [id, n] of unlisted) {
        if (n > 0) hidden.add(id);
        if (n > 1) unlisted.set(id, n - 1);
        else unlisted.delete(id);
      }
      return (id) => !hidden.has(id);
    },
    replyFor(line) {
      const subject = {
        method: "POST",
        path: line.path,
        prompts: () => [...line.prompts],
        batch: line.batch,
      };
      const rule = faults.pick(subject, (r) => r.action.kind === "reply");
      return rule?.action.kind === "reply" ? rule.action.text : undefined;
    },
  };
  const provider = await providerModule(options.provider, ctx);
  const sockets = new Set<Socket>();
  // Pending delays (latency, slow faults) end when the emulator stops.
  const stopping = new AbortController();
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping.signal });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://emulator");
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v ?? ""]),
    );
    // Logged on arrival, so `seq` is arrival order; the outcome is filled in as it becomes known
    // (status stays 0 when nothing is delivered).
    const entry = log.add({
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: maskHeaders(req.headers),
      bytes: 0,
      retryCount: headers["x-stainless-retry-count"] === undefined
        ? undefined
        : Number(headers["x-stainless-retry-count"]),
      status: 0,
      receivedMs: Date.now(),
    });
    const common = {
      "x-request-id": `req_${randomUUID().replaceAll("-", "")}`,
      ...provider.headers?.(),
    };
    try {
      const raw = await readBody(req);
      entry.bytes = raw.length;
      let parsed: unknown;
      const request: EmulatorRequest = {
        method: entry.method,
        path: url.pathname,
        params: {},
        query: url.searchParams,
        headers,
        raw,
        json<T>() {
          if (parsed === undefined) {
            try {
              parsed = JSON.parse(new TextDecoder().decode(raw));
            } catch {
              throw new HttpError(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
              );
            }
          }
          return parsed as T;
        },
      };
      if ((headers["content-type"] ?? "").includes("json") && raw.length) {
        try {
          entry.body = request.json();
        } catch { /* logged as unparsed; the handler answers 400 */ }
      }
      const route = provider.routes.find((r) =>
        r.method === entry.method && r.path.test(url.pathname)
      );
      if (!route) {
        throw new HttpError(
          404,
          `Unknown request URL: ${entry.method} ${url.pathname}`,
          "not_found",
        );
      }
      request.params = { ...url.pathname.match(route.path)?.groups };
      const denied = provider.authenticate(request);
      if (denied) throw denied;

      // `reply` (and the other answer faults) only concern routes that answer; elsewhere they neither apply nor count.
      const rule = faults.pick(
        { method: entry.method, path: url.pathname, prompts: () => safePrompts(provider, request) },
        (r) => !ANSWER_FAULTS.has(r.action.kind) || route.answers === true,
      );
      if (rule) {
        entry.fault = rule.name ?? rule.action.kind;
        const action = rule.action;
        if (action.kind === "drop") {
          req.socket.destroy();
          return;
        }
        if (action.kind === "slow") await pause(action.delayMs);
        if (action.kind === "lost") {
          // Carried out, then the answer is lost on the way (status 0 in the log unless delivered).
          const reply = await route.handle(request);
          const made = reply.json as { id?: unknown; name?: unknown } | undefined;
          const id = made?.id ?? made?.name;
          if (typeof id === "string" && action.listedAfter) unlisted.set(id, action.listedAfter);
          if (action.answer === "reset") {
            req.socket.destroy();
            return;
          }
          await pause(action.answer === "late" ? action.delayMs ?? 60_000 : 2 ** 31 - 1);
          send(res, reply, common, entry);
          return;
        }
        if (action.kind === "status") {
          const reply = action.html !== undefined
            ? { status: action.status, body: action.html, headers: { "content-type": "text/html" } }
            : provider.error(
              action.status,
              action.message ?? defaultMessage(action.status),
              action.code,
              action.extra,
            );
          const hint: Record<string, string> = {};
          if (action.retryAfter !== undefined) hint["retry-after"] = String(action.retryAfter);
          if (action.retryAfterMs !== undefined) {
            hint["retry-after-ms"] = String(action.retryAfterMs);
          }
          if (action.shouldRetry !== undefined) hint["x-should-retry"] = String(action.shouldRetry);
          send(res, { ...reply, headers: { ...reply.headers, ...hint } }, common, entry);
          return;
        }
        if (action.kind === "error-in-200") {
          const reply = provider.errorIn200?.(
            action.message ?? "Provider returned error",
            action.code ?? 502,
          ) ??
            provider.error(500, action.message ?? "Internal error");
          send(res, reply, common, entry);
          return;
        }
        if (action.kind === "error-in-choice" || action.kind === "model-down") {
          const reply = provider.answerFault
            ? await provider.answerFault(action, request)
            : provider.error(500, "Internal error");
          send(res, reply, common, entry);
          return;
        }
        // Answered normally (and logged as such, with the rule named), with the text replaced.
        if (action.kind === "reply") request.replyText = action.text;
      }
      if (options.latencyMs) await pause(options.latencyMs);
      send(res, await route.handle(request), common, entry);
    } catch (error) {
      if (stopping.signal.aborted) return;
      const e = error instanceof HttpError
        ? error
        : new HttpError(500, `emulator bug: ${(error as Error).message}`, "server_error");
      if (!res.headersSent && !res.destroyed) {
        const reply = provider.error(e.status, e.message, e.code, e.extra);
        // A body left unread (too large) would stall the connection: close it after answering.
        if (e.status === 413) reply.headers = { ...reply.headers, connection: "close" };
        send(res, reply, common, entry);
      }
    }
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  ctx.origin = `http://127.0.0.1:${port}`;

  return {
    provider: options.provider,
    url: ctx.origin,
    baseURL: `${ctx.origin}${BASE_PATHS[options.provider]}`,
    port,
    apiKey,
    log,
    faults,
    clock,
    step(batchId, n = 1) {
      if (batchId === undefined) progress.stepAll(n);
      else progress.step(batchId, n);
    },
    stop() {
      stopping.abort();
      return new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
    },
  };
}

function safePrompts(provider: ProviderEmulator, req: EmulatorRequest): string[] {
  try {
    return provider.prompts(req);
  } catch {
    return [];
  }
}

function defaultMessage(status: number): string {
  if (status === 429) return "Rate limit reached for requests";
  if (status === 529) return "Overloaded";
  if (status === 401) return "Invalid authentication";
  if (status >= 500) return "The server had an error while processing your request.";
  return `Error ${status}`;
}
