/**
 * The `anthropic` provider's batch API: Message Batches through the official SDK, with the same
 * client (no SDK retries: Loom retries), the same body builder and the same answer parser as sync
 * calls, and every SDK error classified by {@link toProviderError}.
 *
 * **Requests.** Each item is `{ custom_id, params: messagesBody(request) }`, sent in one
 * `POST /v1/messages/batches` body `{"requests":[…]}`. `workspace_id` and `user_profile_id`, which
 * the SDK sends as headers, leave the params and go to the batch itself (every item must agree).
 *
 * **States.** `processing_status` maps onto Loom's states so:
 *
 * | Anthropic | Loom | why |
 * |---|---|---|
 * | `in_progress` | `in_progress` | |
 * | `canceling` | `in_progress` (providerState `canceling`) | not over: requests that were running may still succeed |
 * | `ended`, `cancel_initiated_at` set, or any request `canceled` | `cancelled` | the user (or the workspace) cancelled it; its results still hold what ran |
 * | `ended`, not cancelled, any request `expired` | `expired` | the 24 h window closed first; results hold what ran |
 * | `ended` otherwise | `completed` | even when every request `errored`: Anthropic has no failed batch state, and each row's error is in the results |
 *
 * Counts: `total` is the sum of all five `request_counts`, `succeeded` is `succeeded`, `failed`
 * is `errored` (canceled and expired requests are not failures; the results say which they are).
 * The API reports them only once the batch has ended (`processing` until then).
 *
 * **Results.** Read from the batch's `results_url` with the SDK's own request machinery (the same
 * auth, headers and timeout as `messages.batches.results`), but decoded here rather than by the
 * SDK's JSONL decoder, which throws on the first blank or malformed line and loses every line
 * after it. Lines are decoded as they stream in: blank lines are skipped, each well-formed line
 * is yielded at once, and lines that are not a result (bad JSON, no `custom_id`, an unknown
 * result type) are collected; once the stream ends, a `LoomIncompleteResultsError` (not
 * retryable: the same file would fail the same way) names the batch and those line numbers, and the core
 * keeps what was read. A download that breaks off mid-stream is a retryable `LoomProviderError`
 * (the core downloads again, whole). Results of an archived batch (29 days after creation) are
 * gone: a `LoomIncompleteResultsError` says so before any download.
 * @module
 */
import type Anthropic from "@anthropic-ai/sdk";
import {
  errorMessage,
  LoomIncompleteResultsError,
  LoomProviderError,
} from "../../../core/base/errors.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchOutcome,
  BatchState,
  BatchStatus,
  CallOptions,
} from "../../../core/spec/provider.ts";
import { unpooledInit } from "../_shared/unpooled.ts";
import { readLines } from "../_shared/lines.ts";
import { toProviderError } from "./errors.ts";
import { type MessageLike, messageResult, messagesBody } from "./request.ts";

const PROVIDER = "anthropic";

/** Requests per batch (the API's limit). */
export const MAX_REQUESTS = 100_000;

/**
 * Bytes of one create body. The API's limit is 256 MB; this reads it as decimal megabytes (the
 * smaller reading) and keeps 1 MB back for the `{"requests":[` … `]}` envelope and any difference
 * in how the API counts.
 */
export const MAX_BYTES = 256_000_000 - 1_000_000;

/**
 * Clock skew allowed between this machine and the API when adopting a lost batch: candidates may
 * have been created this long before `hint.after`, and listing stops at the first batch older.
 */
export const FIND_SKEW_MS = 5 * 60_000;

/** Params the SDK sends as headers; in a batch they belong to the batch, not to a request. */
const HEADER_PARAMS = ["workspace_id", "user_profile_id"] as const;

/** One request of the create body, exactly as sent. */
export interface BatchRequest {
  custom_id: string;
  params: Record<string, unknown>;
}

/** One item as a request of the create body: `messagesBody`, less the header params. */
export function batchRequest(item: BatchItem): BatchRequest {
  const params = messagesBody(item.request);
  for (const name of HEADER_PARAMS) delete params[name];
  return { custom_id: item.customId, params };
}

/** Bytes `item` adds to the create body: its JSON in UTF-8, plus the comma that separates it. */
export function itemBytes(item: BatchItem): number {
  return Buffer.byteLength(JSON.stringify(batchRequest(item)), "utf8") + 1;
}

/** Options of {@link createBatchApi}. */
export interface BatchApiOptions {
  /** Batches per page when `find` lists them (default 100; the API allows 1–1000). */
  readonly listPageSize?: number;
}

/** The batch API of the `anthropic` provider, over the client sync calls use. */
export function createBatchApi(client: Anthropic, options: BatchApiOptions = {}): BatchApi {
  const pageSize = options.listPageSize ?? 100;
  const call = async <T>(what: () => PromiseLike<T>): Promise<T> => {
    try {
      return await what();
    } catch (error) {
      throw toProviderError(error, PROVIDER, client);
    }
  };

  return {
    limits: { maxRequests: MAX_REQUESTS, maxBytes: MAX_BYTES },
    itemBytes,

    async submit(items, _label, callOptions) {
      // Anthropic batches carry no metadata or name: `find` matches by time and request count.
      const requests = items.map(batchRequest);
      const body = {
        requests,
        ...headerParams(items),
      } as unknown as Anthropic.Messages.BatchCreateParams;
      await callOptions?.onCreate?.();
      const batch = await call(() =>
        // A connection of its own: nothing may resend a billed create (see unpooled.ts).
        client.messages.batches.create(body, {
          signal: callOptions?.signal,
          fetchOptions: unpooledInit(),
        })
      );
      return handleOf(batch);
    },

    announcesCreate: true,

    async status(handle, callOptions) {
      const batch = await call(() =>
        client.messages.batches.retrieve(handle.id, {}, { signal: callOptions?.signal })
      );
      return statusOf(batch);
    },

    results(handle, _customIds, callOptions) {
      return results(client, handle, callOptions, call);
    },

    async cancel(handle, callOptions) {
      await call(() =>
        client.messages.batches.cancel(handle.id, {}, { signal: callOptions?.signal })
      );
    },

    async find(_label, hint, callOptions) {
      const after = Date.parse(hint.after);
      if (!Number.isFinite(after)) {
        throw new Error(`${PROVIDER}: find: hint.after is not a date: ${hint.after}`);
      }
      const from = after - FIND_SKEW_MS;
      const found: Array<{ handle: BatchHandle; exact: boolean }> = [];
      await call(async () => {
        // Newest first; pages are fetched as the loop needs them.
        for await (
          const batch of client.messages.batches.list({ limit: pageSize }, {
            signal: callOptions?.signal,
          })
        ) {
          if (Date.parse(batch.created_at) < from) break;
          if (totalOf(batch) === hint.requests) {
            found.push({ handle: handleOf(batch), exact: false });
          }
        }
      });
      return found;
    },
  };
}

/** `workspace_id` / `user_profile_id` for the batch, when the items carry them (all alike). */
function headerParams(items: readonly BatchItem[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of HEADER_PARAMS) {
    const values = new Set(items.map((item) => JSON.stringify(item.request.params[name] ?? null)));
    if (values.size > 1) {
      throw new LoomProviderError(
        `${PROVIDER}: the requests of one batch must share ${name} (it applies to the whole batch)`,
        { fatal: true },
      );
    }
    const value = items[0]?.request.params[name];
    if (value !== undefined && value !== null) out[name] = value;
  }
  return out;
}

function handleOf(batch: Anthropic.Messages.MessageBatch): BatchHandle {
  return { id: batch.id, data: { created_at: batch.created_at, expires_at: batch.expires_at } };
}

function totalOf(batch: Anthropic.Messages.MessageBatch): number {
  const c = batch.request_counts;
  return c.processing + c.succeeded + c.errored + c.canceled + c.expired;
}

/** A MessageBatch in Loom's terms (see the module's table). */
export function statusOf(batch: Anthropic.Messages.MessageBatch): BatchStatus {
  const c = batch.request_counts;
  const counts = { total: totalOf(batch), succeeded: c.succeeded, failed: c.errored };
  const providerState = batch.processing_status;
  if (providerState !== "ended") return { state: "in_progress", providerState, counts };
  let state: BatchState = "completed";
  if (batch.cancel_initiated_at || c.canceled > 0) state = "cancelled";
  else if (c.expired > 0) state = "expired";
  const archived = batch.archived_at
    ? { message: `its results were archived at ${batch.archived_at} and are no longer available` }
    : {};
  return { state, providerState, counts, ...archived };
}

/** The outcomes of an ended batch, decoded tolerantly from its `results_url` (see the module doc). */
async function* results(
  client: Anthropic,
  handle: BatchHandle,
  callOptions: CallOptions | undefined,
  call: <T>(what: () => PromiseLike<T>) => Promise<T>,
): AsyncGenerator<BatchOutcome> {
  const signal = callOptions?.signal;
  const batch = await call(() => client.messages.batches.retrieve(handle.id, {}, { signal }));
  if (batch.archived_at) {
    // Gone for good: neither retryable nor fatal (other batches of the job may still be merged;
    // these rows get this reason and can be submitted again).
    throw new LoomIncompleteResultsError(
      `${PROVIDER}: the results of batch ${batch.id} were archived at ${batch.archived_at} (29 days after its creation) and are no longer available`,
    );
  }
  if (!batch.results_url) {
    throw new LoomProviderError(
      `${PROVIDER}: batch ${batch.id} has no results yet (it is ${batch.processing_status})`,
      { retryable: true },
    );
  }
  const url = batch.results_url;
  // The SDK's own GET (an absolute URL is used as is, with the client's auth), read raw.
  const response = await call(() =>
    client.get<Response>(url, { headers: { Accept: "application/binary" }, signal }).asResponse()
  );
  if (!response.body) return;
  const problems: number[] = [];
  let lineNo = 0;
  try {
    for await (const line of readLines(response.body)) {
      lineNo++;
      if (line.trim() === "") continue;
      const outcome = outcomeOf(line);
      if (outcome) yield outcome;
      else problems.push(lineNo);
    }
  } catch (error) {
    if (signal?.aborted || LoomProviderError.isInstance(error)) throw error;
    throw new LoomProviderError(
      `${PROVIDER}: reading the results of batch ${batch.id} failed after line ${lineNo}: ${
        errorMessage(error)
      }`,
      {
        retryable: true,
        cause: error,
      },
    );
  }
  if (problems.length) {
    const shown = problems.slice(0, 20).join(", ") +
      (problems.length > 20 ? `, … (${problems.length} in all)` : "");
    // Incomplete, not retryable: the same file would fail the same way; the core keeps the
    // outcomes read so far.
    throw new LoomIncompleteResultsError(
      `${PROVIDER}: the results of batch ${batch.id} have ${problems.length} line${
        problems.length === 1 ? "" : "s"
      } that are not a result ` +
        `(line${problems.length === 1 ? "" : "s"} ${shown}); every other line was read`,
    );
  }
}

/** One result line as an outcome; undefined when it is not one (bad JSON, unknown shape). */
export function outcomeOf(line: string): BatchOutcome | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || typeof parsed.custom_id !== "string" || !isObject(parsed.result)) {
    return undefined;
  }
  const customId = parsed.custom_id;
  const result = parsed.result;
  switch (result.type) {
    case "succeeded": {
      const message = result.message;
      if (!isObject(message) || !Array.isArray(message.content)) return undefined;
      return { customId, result: messageResult(message as unknown as MessageLike) };
    }
    case "errored": {
      // `error` is the standard envelope: { type: "error", error: { type, message }, request_id }.
      const envelope = isObject(result.error) ? result.error : {};
      const inner = isObject(envelope.error) ? envelope.error : envelope;
      const type = typeof inner.type === "string" ? inner.type : "error";
      const message = typeof inner.message === "string" ? inner.message : "the request failed";
      return { customId, error: `${type}: ${message}`, kind: "failed" };
    }
    case "expired":
      return {
        customId,
        error: "the batch expired (24 h) before this request ran",
        kind: "expired",
      };
    case "canceled":
      return {
        customId,
        error: "the batch was cancelled before this request ran",
        kind: "cancelled",
      };
    default:
      return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
