/**
 * OpenRouter's Batch API for the `openrouter` provider (openrouter.ai/docs/batch-quickstart and
 * the API reference's Batch section): the requests go inline in one JSON body (`./body.ts`),
 * there is no file to upload, and a batch in a final status carries its results in its own `GET`
 * (`./results.ts`).
 *
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
  BatchOutcome,
  BatchSubmitOptions,
} from "../../../core/spec/provider.ts";
import { eachOf } from "../_shared/chunks.ts";
import { unpooledInit } from "../_shared/unpooled.ts";
import { toProviderError } from "../openai/errors.ts";
import {
  bodyFromItems,
  bodyFromLines,
  createBody,
  encodeItem,
  itemBytes,
  OPENROUTER_BATCH_LIMITS,
} from "./body.ts";
import { type BatchObject, batchStatus, NOT_RUN, resultOutcome, TERMINAL } from "./results.ts";

const PROVIDER = "openrouter";

/** Where the Batch API is, relative to the base URL, when `batch_path` does not say. */
export const DEFAULT_BATCH_PATH = "batches";

/** Batches per page when `find` lists them (the reference allows 1–100). */
const LIST_PAGE = 100;
/** `find` looks at no more than this many batches, newest first. */
const FIND_MAX_BATCHES = 1000;
/** Clock skew allowed between this machine and OpenRouter when `find` compares creation times. */
export const FIND_SKEW_MS = 5 * 60_000;

/** At most this many unreadable results are named in the error. */
const NAMED = 20;

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
