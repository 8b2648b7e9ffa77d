/**
 * OpenRouter's Batch API for the `openrouter` provider (openrouter.ai/docs/batch-quickstart and
 * the API reference's Batch section): the requests go inline in one JSON body, there is no file
 * to upload, and a batch in a final status carries its results in its own `GET`.
 *
 * - Body: `{"endpoint":"/v1/chat/completions","model":…,"completion_window":"24h",
 *   ["provider":…,]"requests":[{"custom_id","body"},…]}`. `endpoint` and `model` come before
 *   `requests`: OpenRouter stream-parses the body and answers 400 otherwise (the quickstart, and
 *   the `openrouter-batch` crate, which verified it live). Each `body` is
 *   {@link chatCompletionBody} with `max_tokens`, the builder sync calls use, so both modes send
 *   the same parameters; answers are read with {@link chatCompletionResult}, as sync answers are
 *   (so `usage.cost` reaches Loom the same way).
 * - Paths: the API reference puts the Batch API under `/api/v1` (`/batches`); the quickstart says
 *   `/api/beta/batches`. The reference's is the default; `batch_path` overrides it. unverified:
 *   which of the two the live service serves (possibly both).
 * - No labels: a batch has no metadata or name field, so `find` answers inexact candidates
 *   (created since the submission, as many requests, the same model) and the core's in-doubt rule
 *   applies: a lost create is never sent again, the user decides.
 * - Cancel: `POST /batches/{id}/cancel`, which OpenRouter enables per organization (403
 *   elsewhere). A refusal says so, and what the user can do, instead of pretending.
 * - Every SDK error goes through {@link toProviderError}; the client is the one sync calls use
 *   (the SDK's retries off), and the create goes out on a connection of its own.
 * @module
 */
import { Buffer } from "node:buffer";
import { APIError } from "openai";
import type OpenAI from "openai";
import {
  LoomIncompleteResultsError,
  LoomProviderError,
  LoomUsageError,
} from "../../../core/base/errors.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchLimits,
  BatchOutcome,
  BatchState,
  BatchStatus,
  BatchSubmitOptions,
} from "../../../core/spec/provider.ts";
import { eachOf } from "../_shared/chunks.ts";
import { unpooledInit } from "../_shared/unpooled.ts";
import { answerError, type CompletionWithErrors } from "../openai/answer-error.ts";
import { toProviderError } from "../openai/errors.ts";
import {
  chatCompletionBody,
  type ChatCompletionLike,
  chatCompletionResult,
} from "../openai/request.ts";

const PROVIDER = "openrouter";

/** The endpoint every Loom batch runs against (one endpoint per batch). */
export const BATCH_ENDPOINT = "/v1/chat/completions";

/** Where the Batch API is, relative to the base URL, when `batch_path` does not say. */
export const DEFAULT_BATCH_PATH = "batches";

/**
 * What one batch may hold: "up to 5,000 requests and 200 MB per batch" (the Batch API guide's
 * key facts). The megabyte is read as 10⁶ bytes (the smaller reading), less 1 MB kept for the
 * body's envelope (endpoint, model, provider) and any difference in how OpenRouter counts.
 */
export const OPENROUTER_BATCH_LIMITS: BatchLimits = {
  maxRequests: 5_000,
  maxBytes: 200_000_000 - 1_000_000,
};

/** Batches per page when `find` lists them (the reference allows 1–100). */
const LIST_PAGE = 100;
/** `find` looks at no more than this many batches, newest first. */
const FIND_MAX_BATCHES = 1000;
/** Clock skew allowed between this machine and OpenRouter when `find` compares creation times. */
export const FIND_SKEW_MS = 5 * 60_000;

/** OpenRouter's batch statuses in Loom's terms (`finalizing` and `cancelling` still run). */
const STATES: Readonly<Record<string, BatchState>> = {
  validating: "validating",
  in_progress: "in_progress",
  finalizing: "in_progress",
  cancelling: "in_progress",
  completed: "completed",
  failed: "failed",
  expired: "expired",
  cancelled: "cancelled",
};

const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);

/** At most this many unreadable results are named in the error. */
const NAMED = 20;

/** The parts of a BatchObject (create, get and list answers) Loom reads. */
export interface BatchObject {
  readonly id: string;
  readonly status: string;
  readonly model?: string;
  readonly created_at?: number;
  readonly request_counts?: { total?: number; completed?: number; failed?: number } | null;
  readonly error?: { message?: string } | null;
  readonly results?: readonly unknown[] | null;
}

/** One request of the create body, exactly as sent: `{custom_id, body}`. */
export function batchRequest(
  item: BatchItem,
): { custom_id: string; body: Record<string, unknown> } {
  return { custom_id: item.customId, body: chatCompletionBody(item.request, "max_tokens") };
}

/** One request of the create body as JSON (no newline in it: JSON escapes them). */
export function encodeItem(item: BatchItem): string {
  return JSON.stringify(batchRequest(item));
}

/** Bytes `item` adds to the create body: its JSON in UTF-8, plus the comma that separates it. */
export function itemBytes(item: BatchItem): number {
  return Buffer.byteLength(encodeItem(item), "utf8") + 1;
}

/**
 * The batch-level routing a request's `provider` parameter asks for: OpenRouter routes a whole
 * batch to one provider and reads only `only` and `allow_fallbacks` there (the reference's
 * BatchProviderPreferences). The parameter stays in each request body too, as sync sends it.
 */
function routingOf(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const provider = body.provider;
  if (typeof provider !== "object" || provider === null || Array.isArray(provider)) {
    return undefined;
  }
  const { only, allow_fallbacks } = provider as Record<string, unknown>;
  const routing = {
    ...(only === undefined ? {} : { only }),
    ...(allow_fallbacks === undefined ? {} : { allow_fallbacks }),
  };
  return Object.keys(routing).length ? routing : undefined;
}

/**
 * The body's opening, up to and including `"requests":[`, from the first request's body: the
 * endpoint and the model first (OpenRouter's stream parser needs them before the requests).
 */
export function bodyHead(first: Record<string, unknown>): string {
  const routing = routingOf(first);
  const head = JSON.stringify({
    endpoint: BATCH_ENDPOINT,
    model: first.model,
    completion_window: "24h",
    ...(routing ? { provider: routing } : {}),
  });
  return `${head.slice(0, -1)},"requests":[`;
}

/** The whole create body for `items`, as sent. */
export function createBody(items: readonly BatchItem[]): string {
  const encoded = items.map(encodeItem);
  return `${bodyHead(batchRequest(items[0]).body)}${encoded.join(",")}]}`;
}

/** A batch's status in Loom's terms. An unknown status counts as running, with the word kept. */
export function batchStatus(batch: BatchObject): BatchStatus {
  const counts = batch.request_counts;
  const message = batch.error?.message;
  return {
    state: STATES[batch.status] ?? "in_progress",
    providerState: batch.status,
    ...(counts
      ? { counts: { total: counts.total, succeeded: counts.completed, failed: counts.failed } }
      : {}),
    ...(typeof message === "string" && message.trim() ? { message } : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The outcome one entry of a batch's `results` stands for, or undefined when it is not a result.
 * A 2xx response is an answer, unless its body reports a failure (OpenRouter's error inside a
 * 200, as sync answers can); another status is that request's failure; a result without a
 * response carries an `error` (`{message, type, param, error_type?}`).
 */
export function resultOutcome(result: unknown): BatchOutcome | undefined {
  if (!isObject(result) || typeof result.custom_id !== "string") return undefined;
  const customId = result.custom_id;
  const { response, error } = result;
  if (isObject(response) && typeof response.status_code === "number") {
    const status = response.status_code;
    const body = response.body;
    if (status >= 200 && status < 300) {
      if (!isObject(body)) {
        return {
          customId,
          error: `${status}: the answer is not a Chat Completion`,
          kind: "failed",
        };
      }
      const failure = answerError(body as CompletionWithErrors, PROVIDER);
      if (failure) return { customId, error: failure.message, kind: "failed" };
      return { customId, result: chatCompletionResult(body as ChatCompletionLike) };
    }
    const inner = isObject(body) && isObject(body.error) ? body.error.message : undefined;
    return {
      customId,
      error: `${status}: ${typeof inner === "string" && inner ? inner : "no error message"}`,
      kind: "failed",
    };
  }
  if (isObject(error)) {
    const type = typeof error.type === "string" && error.type ? error.type : undefined;
    const message = typeof error.message === "string" && error.message
      ? error.message
      : "no error message";
    // unverified: the type OpenRouter gives a request its batch's end left unrun (OpenAI's
    // batch error codes, which the emulator uses); any other error is the request's failure.
    const kind = type === "batch_expired"
      ? "expired"
      : type === "batch_cancelled"
      ? "cancelled"
      : "failed";
    return { customId, error: type ? `${type}: ${message}` : message, kind };
  }
  return undefined;
}

/** What a request of a batch that ended without running it gets. */
const NOT_RUN: Readonly<Record<string, { kind: "expired" | "cancelled"; error: string }>> = {
  expired: { kind: "expired", error: "the batch expired before this request ran" },
  cancelled: { kind: "cancelled", error: "the batch was cancelled before this request ran" },
};

/** Options of {@link openrouterBatchApi}. */
export interface OpenRouterBatchOptions {
  /** `batch_path`: where the Batch API is, resolved against the base URL (default `batches`). */
  readonly path?: string;
  /** Batches per page when `find` lists them (1–100; default 100). */
  readonly listPageSize?: number;
  /** `find` looks at no more than this many batches (newest first). */
  readonly findMaxBatches?: number;
}

/**
 * The Batch API's URL: `path` resolved against the base URL as a directory, so `batches` is under
 * it and `/api/beta/batches` is that path on the same host.
 */
export function batchesURL(baseURL: string, path = DEFAULT_BATCH_PATH): string {
  const base = baseURL.endsWith("/") ? baseURL : `${baseURL}/`;
  return new URL(path, base).toString().replace(/\/+$/, "");
}

/** Checks the `batch_path` option; a path or a URL, resolved against `base_url`. */
export function checkBatchPath(path: unknown): string | undefined {
  if (path === undefined) return undefined;
  if (typeof path !== "string" || !path.trim() || /[?#\s]/.test(path)) {
    throw new LoomUsageError(
      `${PROVIDER}: batch_path must be a path such as /api/v1/batches (or batches, under base_url), without a query`,
    );
  }
  return path;
}

/** The body bytes from chunks of `encodeItem` lines (each copied: a chunk is valid until the next). */
async function bodyFromLines(chunks: AsyncIterable<Uint8Array>): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  const lines = Buffer.concat(parts);
  if (!lines.length) return undefined;
  // Each line ends with "\n", which JSON never holds unescaped: the separators become commas.
  const first = JSON.parse(lines.subarray(0, lines.indexOf(0x0a)).toString("utf8"));
  for (let i = lines.indexOf(0x0a); i !== -1; i = lines.indexOf(0x0a, i + 1)) lines[i] = 0x2c;
  return Buffer.concat([
    Buffer.from(bodyHead(first.body), "utf8"),
    lines.subarray(0, lines.length - 1),
    Buffer.from("]}", "utf8"),
  ]);
}

/** The body from streamed items, built a few hundred requests at a time. */
async function bodyFromItems(items: AsyncIterable<BatchItem>): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let text = "";
  let n = 0;
  for await (const item of items) {
    if (n === 0) parts.push(Buffer.from(bodyHead(batchRequest(item).body), "utf8"));
    text += `${n ? "," : ""}${encodeItem(item)}`;
    if (++n % 256 === 0) {
      parts.push(Buffer.from(text, "utf8"));
      text = "";
    }
  }
  if (n === 0) return undefined;
  parts.push(Buffer.from(`${text}]}`, "utf8"));
  return Buffer.concat(parts);
}

/** The Batch API over the `openai` client the `openrouter` provider's sync calls use. */
export function openrouterBatchApi(client: OpenAI, options: OpenRouterBatchOptions = {}): BatchApi {
  const url = batchesURL(client.baseURL, options.path);
  const maxBatches = options.findMaxBatches ?? FIND_MAX_BATCHES;
  const pageSize = options.listPageSize ?? LIST_PAGE;
  const limits = OPENROUTER_BATCH_LIMITS;

  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toProviderError(error, PROVIDER, client);
    }
  }

  const retrieve = (id: string, signal?: AbortSignal) =>
    call(() => client.get<BatchObject>(`${url}/${encodeURIComponent(id)}`, { signal }));

  /** Sends one create body; `body` is undefined for an empty batch. */
  async function create(
    count: number,
    body: Buffer | undefined,
    callOptions: BatchSubmitOptions | undefined,
  ): Promise<BatchHandle> {
    if (!body || count === 0) {
      throw new LoomProviderError(`${PROVIDER}: a batch needs at least one request`, {
        fatal: true,
      });
    }
    if (count > limits.maxRequests || body.length > limits.maxBytes + 1_000_000) {
      throw new LoomProviderError(
        `${PROVIDER}: a batch holds at most ${limits.maxRequests} requests and 200 MB; ` +
          `this one has ${count} requests and ${body.length} bytes`,
        { fatal: true },
      );
    }
    await callOptions?.onCreate?.();
    const batch = await call(() =>
      client.post<BatchObject>(url, {
        body,
        headers: { "content-type": "application/json" },
        signal: callOptions?.signal,
        // A connection of its own: nothing may resend a billed create (see unpooled.ts).
        fetchOptions: unpooledInit(),
      })
    );
    return { id: batch.id };
  }

  const api: BatchApi = {
    limits,
    encodeItem,
    itemBytes,

    async submit(items, _label, callOptions) {
      const models = new Set(items.map((item) => item.request.model));
      if (models.size > 1) {
        throw new LoomProviderError(
          `${PROVIDER}: a batch runs one model; these requests name ${[...models].join(", ")}`,
          { fatal: true },
        );
      }
      const body = items.length ? Buffer.from(createBody(items), "utf8") : undefined;
      return await create(items.length, body, callOptions);
    },

    // The core's spooled lines go as they are (their newlines turned into commas); else the body
    // is built as the items are read. Either way it is whole before the create is announced.
    async submitStream(source, _label, callOptions) {
      const body = source.lines
        ? await bodyFromLines(source.lines())
        : await bodyFromItems(source.items());
      return await create(source.count, body, callOptions);
    },

    announcesCreate: true,

    async status(handle, callOptions) {
      return batchStatus(await retrieve(handle.id, callOptions?.signal));
    },

    results: (handle, customIds, callOptions) =>
      eachOf(api.resultChunks!(handle, customIds, callOptions)),

    // The results come inline in the batch's own GET once it has ended: one chunk.
    // (The reference's newer `GET /batches/{id}/results` pages the same rows; one GET suffices
    // for the 5,000 requests a batch holds.)
    async *resultChunks(handle, customIds, callOptions) {
      const batch = await retrieve(handle.id, callOptions?.signal);
      if (!TERMINAL.has(batch.status)) {
        throw new LoomProviderError(
          `${PROVIDER}: batch ${batch.id} is ${batch.status}; its results exist once it has ended`,
        );
      }
      const outcomes: BatchOutcome[] = [];
      const unreadable: number[] = [];
      const seen = new Set<string>();
      for (const [index, result] of (batch.results ?? []).entries()) {
        const outcome = resultOutcome(result);
        if (!outcome) {
          unreadable.push(index);
          continue;
        }
        seen.add(outcome.customId);
        outcomes.push(outcome);
      }
      // OpenRouter returns no rows for requests a cancelled or expired batch never ran.
      const notRun = NOT_RUN[batch.status];
      if (notRun && unreadable.length === 0) {
        for (const customId of customIds) {
          if (!seen.has(customId)) outcomes.push({ customId, ...notRun });
        }
      }
      if (outcomes.length) yield outcomes;
      if (unreadable.length) {
        const shown = unreadable.slice(0, NAMED).join(", ") +
          (unreadable.length > NAMED ? ` and ${unreadable.length - NAMED} more` : "");
        // Incomplete, not a provider failure: the same answer would fail the same way.
        throw new LoomIncompleteResultsError(
          `${PROVIDER}: batch ${batch.id}: ${unreadable.length} of its results could not be read ` +
            `(index ${shown}); the requests they stood for are missing from the results`,
        );
      }
    },

    async cancel(handle, callOptions) {
      const signal = callOptions?.signal;
      try {
        await client.post(`${url}/${encodeURIComponent(handle.id)}/cancel`, { signal });
      } catch (error) {
        if (!(error instanceof APIError)) throw toProviderError(error, PROVIDER, client);
        // 409: the batch has a final status already; there is nothing to cancel.
        if (error.status === 409) {
          const batch = await retrieve(handle.id, signal);
          if (TERMINAL.has(batch.status) || batch.status === "cancelling") return;
        }
        if (error.status === 403 || error.status === 404 || error.status === 405) {
          throw notCancelled(handle.id, error);
        }
        throw toProviderError(error, PROVIDER, client);
      }
    },

    async find(_label, hint, callOptions) {
      const after = Date.parse(hint.after);
      if (!Number.isFinite(after)) {
        throw new Error(`${PROVIDER}: find: hint.after is not a date: ${hint.after}`);
      }
      const cutoff = (after - FIND_SKEW_MS) / 1000;
      const found: Array<{ handle: BatchHandle; exact: boolean }> = [];
      let seen = 0;
      let last: string | undefined;
      for (;;) {
        const page = await call(() =>
          client.get<{ data?: BatchObject[]; has_more?: boolean; last_id?: string }>(
            url,
            {
              query: { limit: pageSize, ...(last ? { after: last } : {}) },
              signal: callOptions?.signal,
            },
          )
        );
        const batches = page.data ?? [];
        for (const batch of batches) {
          // Newest first: past the cutoff every other batch is older still.
          if ((batch.created_at ?? 0) < cutoff) return found;
          if (++seen > maxBatches) return found.length ? found : undefined;
          const total = batch.request_counts?.total;
          if (total === hint.requests && (!hint.model || sameModel(batch.model, hint.model))) {
            // No labels: the user decides whether this batch is the lost one.
            found.push({ handle: { id: batch.id }, exact: false });
          }
        }
        last = page.last_id ?? batches.at(-1)?.id;
        if (!page.has_more || !last || !batches.length) return found;
      }
    },
  };
  return api;
}

/**
 * Whether a listed batch's model may be the one a job asked for: the same id, variants aside
 * (unverified: whether OpenRouter lists a `:batch` slug as sent or as its model). A wrong guess
 * only shows the user one more candidate; a missed one could have the batch paid twice.
 */
export function sameModel(listed: string | undefined, asked: string): boolean {
  const base = (id: string) => id.replace(/:[^/]*$/, "");
  return listed === undefined || base(listed) === base(asked);
}

/** The error for a cancel OpenRouter refused or does not serve: what it means, what to do. */
function notCancelled(id: string, error: InstanceType<typeof APIError>): LoomProviderError {
  return new LoomProviderError(
    `${PROVIDER}: OpenRouter did not cancel batch ${id} (HTTP ${error.status}: ${error.message}). ` +
      "OpenRouter enables batch cancellation per organization; where it is off, a batch cannot be " +
      "stopped: it runs to its end (within 24 hours) and is billed for the requests it runs. " +
      "Keep the job and run `loom fetch` once it has ended to get those answers",
    { status: error.status, cause: error },
  );
}
