/**
 * The `acme` provider's batch API, OpenAI's Batch API over `fetch`: the requests go up as a file
 * of JSON lines (`POST /files`, purpose `batch`), one batch runs them (`POST /batches`, labelled
 * with the metadata `loom_name`, which `find` looks for), and the answers come back in an output
 * file and the failures in an error file. A result file is read whole within `timeout_ms`.
 * @module
 */
import {
  type BatchApi,
  type BatchItem,
  type BatchOutcome,
  type BatchState,
  type BatchUpload,
  LoomIncompleteResultsError,
  LoomProviderError,
} from "loom-batch/plugin";
import { chatBody, chatResult } from "./chat.ts";
import { type Endpoint, send, sendJSON } from "./http.ts";

/** A batch as the API describes it (the fields used here). */
interface Batch {
  id: string;
  status: string;
  created_at: number;
  input_file_id: string;
  output_file_id?: string | null;
  error_file_id?: string | null;
  request_counts?: { total?: number; completed?: number; failed?: number };
  errors?: { data?: Array<{ message?: string }> } | null;
  metadata?: Record<string, string> | null;
}

/** The API's statuses in Loom's terms (`finalizing` and `cancelling` are still running). */
const STATES: Record<string, BatchState> = {
  validating: "validating",
  in_progress: "in_progress",
  finalizing: "in_progress",
  cancelling: "in_progress",
  completed: "completed",
  failed: "failed",
  expired: "expired",
  cancelled: "cancelled",
};

/** How far `find` looks: pages of batches, newest first, and the clock skew it allows. */
const FIND_PAGES = 10;
const PAGE_SIZE = 100;
const SKEW_MS = 5 * 60_000;

/** The batch API of one endpoint. */
export function batchApi(endpoint: Endpoint): BatchApi {
  const encodeItem = (item: BatchItem) =>
    JSON.stringify({
      custom_id: item.customId,
      method: "POST",
      url: "/v1/chat/completions",
      body: chatBody(item.request),
    });
  const getBatch = async (id: string, signal?: AbortSignal) =>
    await sendJSON(endpoint, `/batches/${encodeURIComponent(id)}`, {
      method: "GET",
      signal,
    }) as Batch;
  return {
    // The Batch API's limits: 50,000 requests and 200 MB an input file.
    limits: { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024 },
    encodeItem,
    itemBytes: (item) => new TextEncoder().encode(encodeItem(item)).length + 1,
    announcesCreate: true,

    async submit(items, label, options = {}) {
      const { signal } = options;
      let fileId = options.upload?.input_file_id;
      if (!fileId) {
        const form = new FormData();
        form.append("purpose", "batch");
        const lines = items.map((item) => encodeItem(item) + "\n").join("");
        form.append(
          "file",
          new Blob([lines], { type: "application/jsonl" }),
          `${label.name}.jsonl`,
        );
        const file = await sendJSON(endpoint, "/files", { method: "POST", form, signal }) as {
          id: string;
        };
        fileId = file.id;
        await options.onUploaded?.({ input_file_id: fileId });
      }
      // From here the batch may exist even if no answer comes: it is never created twice here.
      await options.onCreate?.();
      const batch = await sendJSON(endpoint, "/batches", {
        method: "POST",
        json: {
          input_file_id: fileId,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
          metadata: { loom_name: label.name },
        },
        signal,
        once: true,
      }) as Batch;
      return { id: batch.id, data: { input_file_id: fileId } };
    },

    async status(handle, options) {
      const batch = await getBatch(handle.id, options?.signal);
      const state = Object.hasOwn(STATES, batch.status) ? STATES[batch.status] : undefined;
      if (!state) {
        throw new LoomProviderError(
          `acme: batch ${batch.id} has an unknown status ${batch.status}`,
        );
      }
      const counts = batch.request_counts;
      return {
        state,
        providerState: batch.status,
        counts: counts && {
          total: counts.total,
          succeeded: counts.completed,
          failed: counts.failed,
        },
        message: batch.errors?.data?.map((e) => e.message).filter(Boolean).join("; ") || undefined,
      };
    },

    async *results(handle, _customIds, options) {
      const batch = await getBatch(handle.id, options?.signal);
      let unreadable = 0;
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (!fileId) continue;
        const path = `/files/${encodeURIComponent(fileId)}/content`;
        const text = await send(
          endpoint,
          path,
          { method: "GET", signal: options?.signal },
          (res) => res.text(),
        );
        for (const line of text.split("\n")) {
          if (line.trim() === "") continue;
          const outcome = outcomeOf(line);
          if (outcome) yield outcome;
          else unreadable++;
        }
      }
      if (unreadable > 0) {
        throw new LoomIncompleteResultsError(
          `acme: ${unreadable} line(s) of batch ${handle.id}'s results are not results`,
        );
      }
    },

    async cancel(handle, options) {
      await sendJSON(endpoint, `/batches/${encodeURIComponent(handle.id)}/cancel`, {
        method: "POST",
        signal: options?.signal,
      });
    },

    async find(label, hint, options) {
      const after = Date.parse(hint.after);
      const cutoff = Number.isFinite(after) ? (after - SKEW_MS) / 1000 : -Infinity;
      const found = [];
      let cursor: string | undefined;
      for (let page = 0; page < FIND_PAGES; page++) {
        const query = `?limit=${PAGE_SIZE}${cursor ? `&after=${encodeURIComponent(cursor)}` : ""}`;
        const list = await sendJSON(endpoint, `/batches${query}`, {
          method: "GET",
          signal: options?.signal,
        }) as { data: Batch[]; has_more?: boolean };
        for (const batch of list.data) {
          // Newest first: past the cutoff every other batch is older still.
          if (batch.created_at < cutoff) return found;
          if (batch.metadata?.loom_name === label.name) {
            found.push({
              handle: { id: batch.id, data: { input_file_id: batch.input_file_id } },
              exact: true,
            });
          }
        }
        if (!list.has_more || list.data.length === 0) return found;
        cursor = list.data.at(-1)!.id;
      }
      // Stopped before reaching the submission's time: there may be one further back.
      return found.length > 0 ? found : undefined;
    },

    async deleteUpload(upload: BatchUpload, options) {
      const path = `/files/${encodeURIComponent(upload.input_file_id)}`;
      try {
        await sendJSON(endpoint, path, { method: "DELETE", signal: options?.signal });
      } catch (error) {
        if ((error as LoomProviderError).status !== 404) throw error; // gone already is success
      }
    },

    deleteUploadCommand: (upload) =>
      `curl -X DELETE -H "Authorization: Bearer $${endpoint.keyVar}" ` +
      `${endpoint.baseURL}/files/${upload.input_file_id}`,
  };
}

/**
 * The outcome one result line stands for, or undefined when it is not a result: a 2xx response
 * is an answer, another status that request's failure; a line without a response has an
 * `error` (`batch_expired`, `batch_cancelled`, or a failure of its own).
 */
function outcomeOf(text: string): BatchOutcome | undefined {
  let line: {
    custom_id?: unknown;
    response?: { status_code?: number; body?: unknown } | null;
    error?: { code?: string; message?: string } | null;
  };
  try {
    line = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof line?.custom_id !== "string") return undefined;
  const customId = line.custom_id;
  const status = line.response?.status_code;
  if (typeof status === "number") {
    const result = status < 300 ? chatResult(line.response?.body) : undefined;
    if (result) return { customId, result };
    const said = (line.response?.body as { error?: { message?: unknown } })?.error?.message;
    const detail = typeof said === "string" ? said : "no answer in the response";
    return { customId, error: `HTTP ${status}: ${detail}`, kind: "failed" };
  }
  if (!line.error) return undefined;
  const { code, message = "no error message" } = line.error;
  const kind = code === "batch_expired"
    ? "expired"
    : code === "batch_cancelled"
    ? "cancelled"
    : "failed";
  return { customId, error: code ? `${code}: ${message}` : message, kind };
}
