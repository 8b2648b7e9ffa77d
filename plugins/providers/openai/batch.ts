/**
 * OpenAI's Batch API for the `openai` provider: the requests go up as one JSONL file (Files API,
 * `purpose: "batch"`), one batch runs them against `/v1/chat/completions`, and the answers come
 * back as an output file (successes) and an error file (failed, expired and cancelled requests).
 *
 * - Each line is `{"custom_id","method":"POST","url":"/v1/chat/completions","body":…}` where the
 *   body is {@link chatCompletionBody}, the builder sync calls use, so both modes send the same
 *   thing; answers are read with {@link chatCompletionResult}, as sync answers are.
 * - Batches carry the metadata `loom_job`, `loom_shard` and `loom_name`, which `find` looks for.
 * - A freshly uploaded file may be invisible to `batches.create` for a moment (a 400 "Cannot find
 *   file"): that case alone is retried a few times after short waits before giving up (retryable).
 * - Unreadable result lines (not JSON, or not a result) do not lose the others: every readable
 *   line is yielded first, then `results` throws a `LoomIncompleteResultsError` (no retry would
 *   fix it) naming the file id and line number of each unreadable line. The requests
 *   they stood for are then missing from the results, which the core reports as errors of their
 *   rows. Blank lines are skipped silently. A download that breaks off is a retryable
 *   `LoomProviderError` (the whole download is tried again).
 * - Every SDK error goes through {@link toProviderError}: a bad key is fatal, 429 and 5xx are
 *   retryable. The client is the one sync calls use (the SDK's own retries off).
 * @module
 */
import { Buffer } from "node:buffer";
import { setTimeout as sleep } from "node:timers/promises";
import { APIError, toFile } from "openai";
import type OpenAI from "openai";
import {
  LoomError,
  LoomIncompleteResultsError,
  LoomProviderError,
} from "../../../core/base/errors.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchLabel,
  BatchLimits,
  BatchOutcome,
  BatchState,
  BatchStatus,
  BatchSubmitOptions,
} from "../../../core/spec/provider.ts";
import { connectionFailure } from "../_shared/http-errors.ts";
import { toProviderError } from "./errors.ts";
import { chatCompletionBody, type ChatCompletionLike, chatCompletionResult } from "./request.ts";
import { unpooledInit } from "../_shared/unpooled.ts";
import { failpoint } from "../../../core/base/failpoints.ts";
import { eachOf } from "../_shared/chunks.ts";
import { readLineChunks } from "../_shared/lines.ts";

/** The endpoint every Loom batch runs against. */
export const BATCH_ENDPOINT = "/v1/chat/completions";

/**
 * What one batch may hold: 50,000 requests and a 200 MB input file. The documents say "200 MB"
 * without saying which megabyte, so the smaller reading (200 × 10⁶ bytes) is used.
 */
export const OPENAI_BATCH_LIMITS: BatchLimits = {
  maxRequests: 50_000,
  maxBytes: 200 * 1000 * 1000,
};

/** Options of {@link openaiBatchApi}; the defaults suit the real API, tests shorten the waits. */
export interface OpenAIBatchOptions {
  /** The provider's name in messages (default `openai`). */
  readonly provider?: string;
  /** The environment variable the key is read from, for the commands Loom suggests (default `OPENAI_API_KEY`). */
  readonly keyVariable?: string;
  /** Waits before each retry of `batches.create` while the uploaded file is not yet visible. */
  readonly fileRetryDelaysMs?: readonly number[];
  /** Batches per page when `find` lists them (1–100). */
  readonly listPageSize?: number;
  /** `find` looks at no more than this many batches (newest first). */
  readonly findMaxBatches?: number;
  /** `find` stops at batches created this long before the hint's `after` (clock skew). */
  readonly findSlackMs?: number;
}

const DEFAULTS = {
  provider: "openai",
  fileRetryDelaysMs: [500, 1000, 2000, 4000],
  listPageSize: 100,
  findMaxBatches: 1000,
  findSlackMs: 10 * 60 * 1000,
} as const;

/**
 * OpenAI's batch statuses in Loom's terms (`finalizing` and `cancelling` are still running); the
 * Batch APIs that copy OpenAI's (OpenRouter's) use the same words.
 */
export const BATCH_STATES: Readonly<Record<string, BatchState>> = {
  validating: "validating",
  in_progress: "in_progress",
  finalizing: "in_progress",
  cancelling: "in_progress",
  completed: "completed",
  failed: "failed",
  expired: "expired",
  cancelled: "cancelled",
};

/** The statuses a batch ends in. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  "completed",
  "failed",
  "expired",
  "cancelled",
]);

/** At most this many unreadable lines are named in the error. */
const NAMED_LINES = 20;

/** One line of the batch input file, without its newline. */
export function batchLine(item: BatchItem): string {
  return JSON.stringify({
    custom_id: item.customId,
    method: "POST",
    url: BATCH_ENDPOINT,
    body: chatCompletionBody(item.request),
  });
}

/** A batch's status in Loom's terms. Unknown statuses count as running, with the word kept. */
export function batchStatus(batch: OpenAI.Batches.Batch): BatchStatus {
  const counts = batch.request_counts;
  const errors = (batch.errors?.data ?? [])
    .map((e) =>
      (e.line == null ? "" : `line ${e.line}: `) + (e.message ?? e.code ?? "unknown error")
    )
    .filter((m) => m.trim());
  return {
    state: BATCH_STATES[batch.status] ?? "in_progress",
    providerState: batch.status,
    ...(counts
      ? { counts: { total: counts.total, succeeded: counts.completed, failed: counts.failed } }
      : {}),
    ...(batch.status === "failed" && errors.length ? { message: errors.join("; ") } : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How a batch API's result entries differ from OpenAI's output lines, which they copy. */
export interface ResultDialect {
  /** The member of a result's `error` naming its kind (OpenAI `code`; OpenRouter `type`). */
  readonly errorKind: "code" | "type";
  /** A failure reported inside a 2xx answer's body (OpenRouter's error in a 200), if any. */
  readonly answerFailure?: (body: Record<string, unknown>) => Error | undefined;
}

const OPENAI_RESULTS: ResultDialect = { errorKind: "code" };

/**
 * The outcome one result line (parsed JSON) stands for, or undefined when it is not a result
 * line. A 2xx response is an answer (unless `dialect` finds a failure in its body); another status
 * is that request's failure; a line without a response carries an `error` whose kind
 * (`batch_expired`, `batch_cancelled`, or a failure of its own) says why.
 */
export function resultOutcome(
  line: unknown,
  dialect: ResultDialect = OPENAI_RESULTS,
): BatchOutcome | undefined {
  if (!isObject(line) || typeof line.custom_id !== "string") return undefined;
  const customId = line.custom_id;
  const { response, error } = line;
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
      const failure = dialect.answerFailure?.(body);
      if (failure) return { customId, error: failure.message, kind: "failed" };
      return { customId, result: chatCompletionResult(body as ChatCompletionLike) };
    }
    const detail = isObject(body) && isObject(body.error) ? body.error.message : undefined;
    return {
      customId,
      error: `${status}: ${typeof detail === "string" && detail ? detail : "no error message"}`,
      kind: "failed",
    };
  }
  if (isObject(error)) {
    const named = error[dialect.errorKind];
    const code = typeof named === "string" && named ? named : undefined;
    const message = typeof error.message === "string" && error.message
      ? error.message
      : "no error message";
    const kind = code === "batch_expired"
      ? "expired"
      : code === "batch_cancelled"
      ? "cancelled"
      : "failed";
    return { customId, error: code ? `${code}: ${message}` : message, kind };
  }
  return undefined;
}

/** A 400 for an input file `batches.create` cannot see yet (a fresh upload, eventually consistent). */
function fileNotVisible(error: unknown): error is APIError {
  return error instanceof APIError && error.status === 400 &&
    /cannot find file/i.test(error.message);
}

/**
 * The lines of a downloaded file, read as they arrive (a character split between chunks stays
 * whole), the lines of each chunk at once; `\r\n` endings lose their `\r`. A failed read throws
 * what `onReadError` makes of it.
 */
export async function* responseLineChunks(
  response: Response,
  onReadError: (error: unknown) => unknown,
): AsyncGenerator<string[]> {
  if (!response.body) {
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw onReadError(error);
    }
    yield text.split(/\r?\n/);
    return;
  }
  try {
    yield* readLineChunks(response.body);
  } catch (error) {
    throw onReadError(error);
  }
}

/** {@link responseLineChunks} a line at a time. */
export function responseLines(
  response: Response,
  onReadError: (error: unknown) => unknown,
): AsyncGenerator<string> {
  return eachOf(responseLineChunks(response, onReadError));
}

/** Lines joined into one Buffer at a time while a batch file is built from a stream. */
const LINES_PER_PART = 256;

/** A batch file built from streamed items: a Buffer a few hundred lines, joined at the end. */
async function fileOf(items: AsyncIterable<BatchItem>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let text = "";
  let lines = 0;
  for await (const item of items) {
    text += `${batchLine(item)}\n`;
    if (++lines % LINES_PER_PART === 0) {
      parts.push(Buffer.from(text, "utf8"));
      text = "";
    }
  }
  if (text) parts.push(Buffer.from(text, "utf8"));
  return Buffer.concat(parts);
}

/** The batch file from chunks of its bytes (each copied: a chunk is valid until the next). */
async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** The Batch API of an OpenAI client (the one sync calls use). */
export function openaiBatchApi(client: OpenAI, options: OpenAIBatchOptions = {}): BatchApi {
  const provider = options.provider ?? DEFAULTS.provider;
  const retryDelays = options.fileRetryDelaysMs ?? DEFAULTS.fileRetryDelaysMs;
  const pageSize = options.listPageSize ?? DEFAULTS.listPageSize;
  const maxBatches = options.findMaxBatches ?? DEFAULTS.findMaxBatches;
  const slackMs = options.findSlackMs ?? DEFAULTS.findSlackMs;
  const limits = OPENAI_BATCH_LIMITS;

  /** Runs one SDK call, with its errors in Loom's terms. */
  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toProviderError(error, provider, client);
    }
  }

  const handleOf = (batch: OpenAI.Batches.Batch): BatchHandle => ({
    id: batch.id,
    data: { input_file_id: batch.input_file_id },
  });

  /** Creates the batch, waiting out a fresh file's invisibility a few times. */
  async function createBatch(
    fileId: string,
    label: BatchLabel,
    signal: AbortSignal | undefined,
  ): Promise<OpenAI.Batches.Batch> {
    for (let attempt = 0;; attempt++) {
      try {
        return await client.batches.create(
          {
            input_file_id: fileId,
            endpoint: BATCH_ENDPOINT,
            completion_window: "24h",
            metadata: {
              loom_job: label.job,
              loom_shard: String(label.shard),
              loom_name: label.name,
            },
          },
          // A connection of its own: nothing may resend a billed create (see unpooled.ts).
          { signal, fetchOptions: unpooledInit() },
        );
      } catch (error) {
        if (!fileNotVisible(error)) throw toProviderError(error, provider, client);
        if (attempt < retryDelays.length) {
          await sleep(retryDelays[attempt], undefined, { signal });
          continue;
        }
        // Still invisible: a later submission (a new upload) may well work.
        throw new LoomProviderError(
          `${provider}: the uploaded batch file ${fileId} was still unknown to the Batch API after ${
            attempt + 1
          } attempts (${error.message})`,
          { status: error.status, retryable: true, cause: error },
        );
      }
    }
  }

  /** The lines of a file, a chunk's at a time. */
  async function* fileLines(
    fileId: string,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<string[]> {
    const response = await call(() => client.files.content(fileId, { signal }));
    const onReadError = (error: unknown) =>
      signal?.aborted || LoomError.isInstance(error)
        ? error
        : connectionFailure(`${provider}: reading file ${fileId}`, error);
    yield* responseLineChunks(response, onReadError);
  }

  /**
   * Uploads the batch file (`bytes` builds it; an earlier attempt's upload is reused instead)
   * and creates the batch.
   */
  async function submitFile(
    count: number,
    bytes: () => Promise<Buffer>,
    label: BatchLabel,
    callOptions: BatchSubmitOptions | undefined,
  ): Promise<BatchHandle> {
    const signal = callOptions?.signal;
    if (count === 0) {
      throw new LoomProviderError(`${provider}: a batch needs at least one request`, {
        fatal: true,
      });
    }
    // A retry reuses the upload of an earlier attempt (the same items): one file per shard.
    let fileId = callOptions?.upload?.input_file_id;
    if (!fileId) {
      const file = await bytes();
      if (count > limits.maxRequests || file.length > limits.maxBytes) {
        throw new LoomProviderError(
          `${provider}: a batch holds at most ${limits.maxRequests} requests and ${limits.maxBytes} bytes; ` +
            `this one has ${count} requests and ${file.length} bytes`,
          { fatal: true },
        );
      }
      const uploaded = await call(async () =>
        client.files.create({
          file: await toFile(file, `${label.name}.jsonl`),
          purpose: "batch",
        }, { signal })
      );
      fileId = uploaded.id;
      await callOptions?.onUploaded?.({ input_file_id: fileId });
    }
    failpoint("submit:uploaded");
    await callOptions?.onCreate?.();
    const batch = await createBatch(fileId, label, signal);
    return { id: batch.id, data: { input_file_id: fileId } };
  }

  const api: BatchApi = {
    limits,

    encodeItem: batchLine,

    itemBytes(item) {
      return Buffer.byteLength(batchLine(item), "utf8") + 1;
    },

    submit: (items, label, callOptions) =>
      submitFile(
        items.length,
        async () => Buffer.from(items.map((item) => `${batchLine(item)}\n`).join(""), "utf8"),
        label,
        callOptions,
      ),

    // The core's spooled lines (`encodeItem`'s) go as they are; else the file is built as the
    // items are read, in Buffers outside the JS heap (a shard's items are never held at once).
    submitStream: (source, label, callOptions) =>
      submitFile(
        source.count,
        () => source.lines ? bytesOf(source.lines()) : fileOf(source.items()),
        label,
        callOptions,
      ),

    announcesCreate: true,

    // `DELETE /v1/files/{file_id}` (platform.openai.com/docs/api-reference/files/delete).
    deleteUploadCommand(upload) {
      return `curl -X DELETE ${client.baseURL.replace(/\/+$/, "")}/files/${upload.input_file_id} ` +
        `-H "Authorization: Bearer $${options.keyVariable ?? "OPENAI_API_KEY"}"`;
    },

    async deleteUpload(upload, callOptions) {
      const fileId = upload.input_file_id;
      if (!fileId) return;
      try {
        await client.files.delete(fileId, { signal: callOptions?.signal });
      } catch (error) {
        // unverified: a file deleted already answers 404 (as the emulator's "No such File object").
        if (error instanceof APIError && error.status === 404) return; // gone already
        throw toProviderError(error, provider, client);
      }
    },

    async status(handle, callOptions) {
      return batchStatus(
        await call(() => client.batches.retrieve(handle.id, { signal: callOptions?.signal })),
      );
    },

    results: (handle, customIds, callOptions) =>
      eachOf(api.resultChunks!(handle, customIds, callOptions)),

    // The outcomes of each chunk of the files at once (a million lines are a few thousand steps).
    async *resultChunks(handle, _customIds, callOptions) {
      const signal = callOptions?.signal;
      const batch = await call(() => client.batches.retrieve(handle.id, { signal }));
      if (!TERMINAL_STATES.has(batch.status)) {
        throw new LoomProviderError(
          `${provider}: batch ${batch.id} is ${batch.status}; its results exist once it has ended`,
        );
      }
      const unreadable = new Map<string, number[]>();
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (!fileId) continue;
        let number = 0;
        for await (const lines of fileLines(fileId, signal)) {
          const outcomes: BatchOutcome[] = [];
          for (const text of lines) {
            number++;
            if (!text.trim()) continue;
            let outcome: BatchOutcome | undefined;
            try {
              outcome = resultOutcome(JSON.parse(text));
            } catch {
              outcome = undefined;
            }
            if (outcome) outcomes.push(outcome);
            else unreadable.set(fileId, [...(unreadable.get(fileId) ?? []), number]);
          }
          if (outcomes.length) yield outcomes;
        }
      }
      if (unreadable.size) {
        const total = [...unreadable.values()].reduce((n, lines) => n + lines.length, 0);
        let named = 0;
        const where = [...unreadable].map(([fileId, lines]) => {
          const shown = lines.slice(0, Math.max(0, NAMED_LINES - named));
          named += shown.length;
          const more = lines.length - shown.length;
          return `${fileId} line${lines.length === 1 ? "" : "s"} ${shown.join(", ")}${
            more ? ` and ${more} more` : ""
          }`;
        });
        // Incomplete, not a provider failure: nothing a retry could fix, the rest is kept.
        throw new LoomIncompleteResultsError(
          `${provider}: batch ${batch.id}: ${total} result line${
            total === 1 ? "" : "s"
          } could not be read (${where.join("; ")}); ` +
            `the requests they stood for are missing from the results`,
        );
      }
    },

    async cancel(handle, callOptions) {
      const signal = callOptions?.signal;
      try {
        await client.batches.cancel(handle.id, { signal });
      } catch (error) {
        // Refused because the batch already ended (or is cancelling): there is nothing to cancel.
        if (error instanceof APIError && (error.status === 400 || error.status === 409)) {
          const batch = await call(() => client.batches.retrieve(handle.id, { signal }));
          if (TERMINAL_STATES.has(batch.status) || batch.status === "cancelling") return;
        }
        throw toProviderError(error, provider, client);
      }
    },

    async find(label, hint, callOptions) {
      const after = Date.parse(hint.after);
      const cutoff = Number.isFinite(after) ? (after - slackMs) / 1000 : Number.NEGATIVE_INFINITY;
      const found: Array<{ handle: BatchHandle; exact: boolean }> = [];
      let seen = 0;
      let complete = false;
      await call(async () => {
        for await (
          const batch of client.batches.list({ limit: pageSize }, { signal: callOptions?.signal })
        ) {
          // Newest first: past the cutoff every other batch is older still.
          if (batch.created_at < cutoff) {
            complete = true;
            break;
          }
          if (++seen > maxBatches) break;
          if (batch.metadata?.loom_name === label.name) {
            found.push({ handle: handleOf(batch), exact: true });
          }
        }
        if (seen <= maxBatches) complete = true; // the list ended
      });
      // Stopped at the cap before reaching the submission's time: Loom cannot say there is none.
      return found.length || complete ? found : undefined;
    },
  };
  return api;
}
