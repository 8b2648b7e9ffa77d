/**
 * Gemini's Batch API (`models/{model}:batchGenerateContent`) through `@google/genai`, as Loom's
 * {@link BatchApi}. A small batch goes inline (`src: InlinedRequest[]`, each with
 * `metadata.key` = the item's custom id); a larger one is uploaded as a JSONL file of
 * `{"key", "request"}` lines (requests in the REST wire form, see {@link wireRequest}) and
 * created from it. Batches carry Loom's label as their display name, which is how {@link find}
 * adopts a batch created just before a crash.
 *
 * Results: inline responses come back in `dest.inlinedResponses`, joined by `metadata.key`, or by
 * position when the API drops the metadata (it sometimes does); file results are downloaded and
 * read line by line. An expired batch returns nothing, so every request is reported `expired`; a
 * cancelled one reports what ran and `cancelled` for the rest.
 * @module
 */
import type {
  ApiError,
  BatchJob,
  GoogleGenAI,
  InlinedRequest,
  InlinedResponse,
} from "@google/genai";
import {
  isFatal,
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
  BatchSubmitOptions,
} from "../../../core/spec/provider.ts";
import { readLines } from "../_shared/lines.ts";
import { GEMINI_URL, googleConnectionFailure, googleFailure } from "./errors.ts";
import { answerResult, type GeminiAnswer, generateContentParams, wireRequest } from "./request.ts";
import { failpoint } from "../../../core/base/failpoints.ts";

/**
 * Largest estimated request body sent inline: Gemini takes 20 MB inline; 1 MB is left for the
 * envelope and for reading "MB" as either 10^6 or 2^20 bytes.
 */
export const INLINE_MAX_BYTES = 19_000_000;

/** An input file may hold 2 GB (read as 10^9 bytes, the smaller reading). */
export const MAX_FILE_BYTES = 2_000_000_000;

/**
 * Gemini documents no request-count limit, only bytes. 100,000 bounds what one lost or failed
 * batch costs and what one results download holds, and matches Anthropic's cap.
 */
export const MAX_REQUESTS = 100_000;

/** Bytes an inline request adds beyond its file line (`"metadata":{…}` instead of `"key"`). */
const INLINE_ITEM_OVERHEAD = 32;

/** What {@link googleBatch} needs: the provider's client and how it reaches the API. */
export interface GoogleBatchOptions {
  readonly ai: GoogleGenAI;
  /** The SDK's error class (the SDK is imported lazily, so it is passed in). */
  readonly ApiError: typeof ApiError;
  /** For downloading results files (sent as `x-goog-api-key`; never logged). */
  readonly apiKey: string;
  /** The API's origin; default Google's. */
  readonly baseUrl?: string;
  /** API version of every path (default `v1beta`, as the client is pinned to). */
  readonly apiVersion?: string;
  /** Wait for a download's response headers at most this long. */
  readonly timeoutMs: number;
  /** Batches estimated at most this many bytes go inline (default {@link INLINE_MAX_BYTES}). */
  readonly inlineMaxBytes?: number;
}

/** Gemini's job states (`JOB_STATE_*` from the SDK, `BATCH_STATE_*` on the wire) in Loom's terms. */
const STATES: Record<string, BatchState> = {
  PENDING: "validating",
  QUEUED: "validating",
  RUNNING: "in_progress",
  CANCELLING: "in_progress",
  PAUSED: "in_progress",
  UPDATING: "in_progress",
  SUCCEEDED: "completed",
  PARTIALLY_SUCCEEDED: "completed",
  FAILED: "failed",
  CANCELLED: "cancelled",
  EXPIRED: "expired",
};

/** Loom's state for a Gemini job state; an unknown state counts as still running. */
export function batchState(state: string | undefined): BatchState {
  return STATES[(state ?? "").replace(/^(JOB|BATCH)_STATE_/, "")] ?? "in_progress";
}

const TERMINAL: ReadonlySet<BatchState> = new Set(["completed", "failed", "expired", "cancelled"]);

/** One line of a batch input file: `{"key": customId, "request": <REST GenerateContentRequest>}`. */
export function inputLine(item: BatchItem): string {
  return JSON.stringify({ key: item.customId, request: wireRequest(item.request) });
}

/** `google.rpc.Code` names by number (google/rpc/code.proto), as an Operation's `error.code` carries them. */
const RPC_NAMES: Record<number, string> = {
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  6: "ALREADY_EXISTS",
  7: "PERMISSION_DENIED",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  10: "ABORTED",
  11: "OUT_OF_RANGE",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  15: "DATA_LOSS",
  16: "UNAUTHENTICATED",
};

/**
 * A per-request or batch error as `"<code> <status>: <message>"`. A `google.rpc.Status` (what the
 * batch proto puts in a response's or the Operation's `error`) carries a numeric
 * `google.rpc.Code` and no status name: it is shown by its name (`INVALID_ARGUMENT: …`).
 */
export function statusText(error: { code?: unknown; status?: unknown; message?: unknown }): string {
  const rpcName = !error.status && typeof error.code === "number"
    ? RPC_NAMES[error.code]
    : undefined;
  const head = rpcName ??
    [error.code, error.status].filter((v) => v !== undefined && v !== null && v !== "").join(" ");
  const message = typeof error.message === "string" ? error.message : "";
  return head && message ? `${head}: ${message}` : head || message || "unknown error";
}

const encoder = new TextEncoder();

/** Gemini's batch API over the provider's SDK client. */
export function googleBatch(options: GoogleBatchOptions): BatchApi {
  const { ai, apiKey, timeoutMs } = options;
  const origin = (options.baseUrl ?? GEMINI_URL).replace(/\/+$/, "");
  const endpoint = { url: origin, timeoutMs };
  const version = options.apiVersion ?? "v1beta";
  const inlineMaxBytes = options.inlineMaxBytes ?? INLINE_MAX_BYTES;

  /** An SDK failure in Loom's terms, as the sync path maps it (auth fatal, 429/5xx retryable). */
  const failure = (error: unknown, signal?: AbortSignal): unknown => {
    if (signal?.aborted || error instanceof LoomProviderError) return error;
    if (error instanceof options.ApiError) {
      return googleFailure(error.status, error.message, undefined, error);
    }
    return googleConnectionFailure(error, endpoint);
  };
  const call = async <T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw failure(error, signal);
    }
  };
  const getJob = (handle: BatchHandle, signal?: AbortSignal): Promise<BatchJob> =>
    call(signal, () => ai.batches.get({ name: handle.id, config: { abortSignal: signal } }));

  /**
   * A GET the SDK cannot make (`path` under the API's origin, key in the `x-goog-api-key` header,
   * never logged), once its headers arrive; a failure comes in Loom's terms. The timeout covers
   * the wait for an answer, not the reading of a large body; the caller's signal aborts the read
   * until `close()`.
   */
  async function openGet(
    path: string,
    signal?: AbortSignal,
  ): Promise<{ response: Response; close: () => void }> {
    const controller = new AbortController();
    const abort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", abort, { once: true });
    const close = () => signal?.removeEventListener("abort", abort);
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let response: Response;
    try {
      response = await fetch(`${origin}/${path}`, {
        headers: { "x-goog-api-key": apiKey },
        signal: controller.signal,
      });
    } catch (error) {
      close();
      if (signal?.aborted) throw error;
      // Not the caller's abort: the timer's, so the call timed out.
      throw googleConnectionFailure(error, endpoint, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      const body = (await response.text().catch(() => "")).trim();
      close();
      throw googleFailure(
        response.status,
        body || `${response.status} ${response.statusText}`,
        response.headers,
      );
    }
    return { response, close };
  }

  /** The lines of a generated file, streamed (`GET /download/{ver}/files/{id}:download?alt=media`). */
  async function* downloadLines(fileName: string, signal?: AbortSignal): AsyncGenerator<string> {
    const id = fileName.replace(/^files\//, "");
    const { response, close } = await openGet(
      `download/${version}/files/${encodeURIComponent(id)}:download?alt=media`,
      signal,
    );
    try {
      if (!response.body) return;
      yield* readLines(response.body);
    } catch (error) {
      if (signal?.aborted) throw error;
      throw googleConnectionFailure(error, endpoint, false);
    } finally {
      close();
    }
  }

  /**
   * Why a batch failed: the Operation's `error` (a google.rpc.Status), which the SDK's BatchJob
   * leaves out on the Gemini API, read from the raw `GET {ver}/batches/{id}`. Undefined when the
   * operation carries none or cannot be read (the state alone is still known).
   */
  async function failureReason(name: string, signal?: AbortSignal): Promise<string | undefined> {
    let operation: { error?: { code?: unknown; message?: unknown } };
    try {
      const { response, close } = await openGet(`${version}/${name}`, signal);
      try {
        operation = (await response.json()) as typeof operation;
      } finally {
        close();
      }
    } catch (error) {
      if (signal?.aborted || isFatal(error)) throw error;
      return undefined;
    }
    const error = operation?.error;
    return error && typeof error === "object" ? statusText(error) : undefined;
  }

  /** A response or error entry (inline or a file line) as an outcome. */
  const outcome = (
    customId: string,
    entry: { response?: unknown; error?: unknown },
  ): BatchOutcome => {
    if (entry.error != null) {
      return {
        customId,
        error: statusText(entry.error as Record<string, unknown>),
        kind: "failed",
      };
    }
    try {
      return { customId, result: answerResult(entry.response as GeminiAnswer) };
    } catch (error) {
      // A blocked prompt: that request failed.
      if (error instanceof LoomProviderError) {
        return { customId, error: error.message, kind: "failed" };
      }
      throw error;
    }
  };

  return {
    limits: { maxRequests: MAX_REQUESTS, maxBytes: MAX_FILE_BYTES },

    itemBytes(item) {
      return encoder.encode(inputLine(item)).length + 1;
    },

    announcesCreate: true,

    // `DELETE /v1beta/{name=files/*}` (ai.google.dev/api/files), the key in `x-goog-api-key`.
    deleteUploadCommand(upload) {
      return `curl -X DELETE "${origin}/${version}/${upload.file}" ` +
        `-H "x-goog-api-key: $GEMINI_API_KEY"`;
    },

    async deleteUpload(upload, callOptions) {
      const signal = callOptions?.signal;
      if (!upload.file) return;
      try {
        await call(
          signal,
          () => ai.files.delete({ name: upload.file, config: { abortSignal: signal } }),
        );
      } catch (error) {
        // Gone already: the Files API answers a missing file with 403 "… or it may not exist" (or 404).
        const gone = error instanceof LoomProviderError &&
          (error.status === 404 || (error.status === 403 && /may not exist/i.test(error.message)));
        if (!gone) throw error;
      }
    },

    async submit(items, label, callOptions?: BatchSubmitOptions): Promise<BatchHandle> {
      const signal = callOptions?.signal;
      if (items.length === 0) throw new Error("google: a batch needs at least one request");
      const model = items[0].request.model;
      const ids = new Set<string>();
      for (const item of items) {
        if (item.request.model !== model) {
          throw new Error(
            `google: one batch holds one model, got ${model} and ${item.request.model}`,
          );
        }
        if (ids.has(item.customId)) {
          throw new Error(`google: custom id ${item.customId} appears twice in one batch`);
        }
        ids.add(item.customId);
      }
      const lines = items.map((item) => `${inputLine(item)}\n`);
      const fileBytes = lines.reduce((sum, line) => sum + encoder.encode(line).length, 0);
      const inlineBytes = fileBytes + items.length * INLINE_ITEM_OVERHEAD + 1024;
      let src: InlinedRequest[] | string;
      let file: string | undefined;
      if (inlineBytes <= inlineMaxBytes) {
        // The SDK's own form, so it sends exactly what a sync call of the same request sends.
        src = items.map((item) => {
          const { contents, config } = generateContentParams(item.request);
          return { contents, config, metadata: { key: item.customId } } as InlinedRequest;
        });
      } else {
        if (fileBytes > MAX_FILE_BYTES) {
          throw new Error(
            `google: the batch input is ${fileBytes} bytes; Gemini takes at most ${MAX_FILE_BYTES}`,
          );
        }
        // A retry reuses the upload of an earlier attempt (the same items).
        file = callOptions?.upload?.file;
        if (!file) {
          const uploaded = await call(signal, () =>
            ai.files.upload({
              file: new Blob(lines, { type: "application/jsonl" }),
              config: { mimeType: "jsonl", displayName: label.name, abortSignal: signal },
            }));
          if (!uploaded.name) throw new Error("google: the upload answered without a file name");
          file = uploaded.name;
          await callOptions?.onUploaded?.({ file });
        }
        src = file;
        failpoint("submit:uploaded");
      }
      await callOptions?.onCreate?.();
      const job = await call(
        signal,
        () =>
          ai.batches.create({
            model,
            src,
            config: { displayName: label.name, abortSignal: signal },
          }),
      );
      if (!job.name) throw new Error("google: the batch was created but the answer has no name");
      const data: Record<string, string> = file ? { mode: "file", file } : { mode: "inline" };
      return { id: job.name, data };
    },

    async status(handle, callOptions): Promise<BatchStatus> {
      const job = await getJob(handle, callOptions?.signal);
      // The SDK maps neither batchStats nor, on the Gemini API, the Operation's error (its
      // BatchJob.error is Vertex AI's): a failed batch's reason is read from the raw operation.
      const state = batchState(job.state);
      const message = job.error?.message ??
        (state === "failed" ? await failureReason(handle.id, callOptions?.signal) : undefined);
      return {
        state,
        ...(job.state ? { providerState: job.state } : {}),
        ...(message ? { message } : {}),
      };
    },

    async *results(handle, customIds, callOptions) {
      const signal = callOptions?.signal;
      const job = await getJob(handle, signal);
      const state = batchState(job.state);
      if (!TERMINAL.has(state)) {
        throw new Error(
          `google: batch ${handle.id} has not finished (${
            job.state ?? "no state"
          }); results exist once it ends`,
        );
      }
      if (state === "expired") {
        // Gemini returns nothing from an expired batch.
        for (const customId of customIds) {
          yield { customId, error: "the batch expired before this request ran", kind: "expired" };
        }
        return;
      }
      const seen = new Set<string>();
      const inlined: InlinedResponse[] | undefined = job.dest?.inlinedResponses;
      if (inlined) {
        let unknown = 0;
        for (const [i, entry] of inlined.entries()) {
          // Responses keep input order, and sometimes come back without their metadata.
          const customId = entry.metadata?.key ?? customIds[i];
          if (customId === undefined) {
            unknown++;
            continue;
          }
          seen.add(customId);
          yield outcome(customId, entry);
        }
        if (unknown > 0) {
          throw new LoomIncompleteResultsError(
            `google: batch ${handle.id} returned ${unknown} response(s) without a key beyond the ${customIds.length} submitted`,
          );
        }
      } else if (job.dest?.fileName) {
        const fileName = job.dest.fileName;
        const bad: number[] = [];
        let lineNo = 0;
        let index = 0;
        for await (const raw of downloadLines(fileName, signal)) {
          lineNo++;
          const line = raw.trim();
          if (line === "") continue;
          let entry: { key?: unknown; response?: unknown; error?: unknown };
          try {
            entry = JSON.parse(line);
          } catch {
            bad.push(lineNo);
            continue;
          }
          if (
            typeof entry !== "object" || entry === null ||
            (entry.response == null && entry.error == null)
          ) {
            bad.push(lineNo);
            continue;
          }
          const customId = typeof entry.key === "string" ? entry.key : customIds[index];
          index++;
          if (customId === undefined) {
            bad.push(lineNo);
            continue;
          }
          seen.add(customId);
          yield outcome(customId, entry);
        }
        if (bad.length > 0) {
          const shown = bad.slice(0, 10).join(", ") +
            (bad.length > 10 ? `, … (${bad.length} in all)` : "");
          throw new LoomIncompleteResultsError(
            `google: results file ${fileName} of batch ${handle.id} has unreadable line(s): ${shown}`,
          );
        }
      }
      if (state === "cancelled") {
        for (const customId of customIds) {
          if (!seen.has(customId)) {
            yield {
              customId,
              error: "the batch was cancelled before this request ran",
              kind: "cancelled",
            };
          }
        }
      }
    },

    async cancel(handle, callOptions) {
      const signal = callOptions?.signal;
      try {
        await call(
          signal,
          () => ai.batches.cancel({ name: handle.id, config: { abortSignal: signal } }),
        );
      } catch (error) {
        // A batch that ended meanwhile cannot be cancelled (FAILED_PRECONDITION): nothing to do.
        const precondition = error instanceof LoomProviderError && error.status === 400 &&
          error.message.includes("FAILED_PRECONDITION");
        if (precondition && TERMINAL.has(batchState((await getJob(handle, signal)).state))) return;
        throw error;
      }
    },

    async find(label, _hint, callOptions) {
      const signal = callOptions?.signal;
      // Display names are Loom's labels, so a match is exact; the list is read to its end
      // (creation times are the server's clock, so `hint.after` is not used to stop early).
      const found: BatchJob[] = await call(signal, async () => {
        const jobs: BatchJob[] = [];
        const pager = await ai.batches.list({ config: { pageSize: 100, abortSignal: signal } });
        for await (const job of pager) {
          if (job.displayName === label.name && job.name) jobs.push(job);
        }
        return jobs;
      });
      found.sort((a, b) => (b.createTime ?? "").localeCompare(a.createTime ?? ""));
      return found.map((job) => ({ handle: { id: job.name! }, exact: true }));
    },
  };
}
