/**
 * Message Batches: create, retrieve, list, cancel, delete and the results stream.
 *
 * Lifecycle (`processing_status`): `in_progress` → `ended`, or `in_progress` → `canceling` → `ended`.
 * A batch moves on when the schedule says (`ctx.progress.steps(id)`): one step ends an
 * `in_progress` batch, one more step after a cancel ends a `canceling` one. A retrieve reads the
 * state first and counts as a poll afterwards, so under `polls: N` a state lasts N retrievals.
 * The create reply is always `in_progress` (the API never creates an ended batch), even under
 * `instant`, where the batch has ended by the next request (so it can no longer be canceled).
 * Independently, once the clock passes `expires_at` (created + 24 h) an unfinished batch ends at
 * `expires_at` with part of its requests expired (canceled, if a cancel was under way); 29 days
 * after creation it is archived (`archived_at` set, results 404). `request_counts` reads
 * `processing == total` and zeros until the batch ends, then all counts move at once.
 *
 * Batch scenarios (`EmulatorOptions.batches`, matched by the batch's creation number):
 * - `end: "expire"`: the step that would complete the batch expires it instead: the first
 *   `processed` requests (default half) get results, the rest `expired`; `ended_at = expires_at`.
 * - `end: "fail"`: Anthropic has no failed batch state; every request ends `errored` with
 *   `invalid_request_error`, as when the asynchronous params validation refuses them all.
 * - `processed`: also how many requests had finished when a cancel or a clock expiry stops a batch
 *   (default half, rounded down); the finished ones are the first in input order.
 * - `failPromptContains`: requests whose text contains it end `errored` with `api_error` (retryable).
 * - `onlyErrors`: every processed request ends `errored` with `api_error`.
 * - `malformedLines` / `blankLines`: that many truncated-JSON / empty lines right after the first
 *   result line, so the SDK's JSONL decoder yields one result, then throws a `SyntaxError`.
 * - `fileInvisibleFor`: OpenAI only (Anthropic has no file upload); ignored.
 * @module
 */
import type { PageResponse } from "@anthropic-ai/sdk/core/pagination";
import type {
  DeletedMessageBatch,
  MessageBatch,
  MessageBatchIndividualResponse,
  MessageBatchResult,
} from "@anthropic-ai/sdk/resources/messages/batches";
import type { BatchScenario, EmulatorContext, EmulatorRequest, Reply } from "../../server.ts";
import { HttpError } from "../../server.ts";
import { composeMessage, paramsContext } from "./messages.ts";
import { errorEnvelope, errorType, invalid, isObject, makeId, timestamp } from "./shared.ts";
import { checkSemantics, checkShape, type ParamsContext, promptOf } from "./validate.ts";

/** Default `maxRequests`: requests per batch. */
const MAX_REQUESTS = 100_000;
/** Default `maxBytes`: the create request's body (256 MB). */
const MAX_BYTES = 256 * 1024 * 1024;
const HOUR = 3_600_000;
const EXPIRY_MS = 24 * HOUR;
const ARCHIVE_MS = 29 * 24 * HOUR;
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

interface Item {
  customId: string;
  params: Record<string, unknown>;
}

interface Batch {
  id: string;
  /** Creation number (1-based), for scenarios and list order. */
  nth: number;
  created: number;
  expires: number;
  cx: ParamsContext;
  items: Item[];
  scenario: BatchScenario;
  status: "in_progress" | "canceling" | "ended";
  cancelAt?: number;
  /** Lifecycle steps elapsed when the cancel arrived. */
  cancelSteps: number;
  endedAt?: number;
  results?: MessageBatchIndividualResponse[];
  deleted: boolean;
}

/** The batch endpoints of one emulator, over its own store. */
export class MessageBatches {
  readonly #ctx: EmulatorContext;
  readonly #batches = new Map<string, Batch>();

  constructor(ctx: EmulatorContext) {
    this.#ctx = ctx;
  }

  /** `POST /v1/messages/batches`. */
  create(req: EmulatorRequest): Reply {
    const ctx = this.#ctx;
    const maxBytes = ctx.limit("maxBytes", MAX_BYTES);
    if (req.raw.length > maxBytes) {
      throw new HttpError(
        413,
        `Request exceeds the maximum size of ${maxBytes} bytes`,
        "request_too_large",
      );
    }
    const body = req.json<unknown>();
    const cx = paramsContext(ctx, req);
    const items = this.#checkRequests(body, cx);
    const nth = ctx.next("batch");
    const id = makeId("msgbatch", nth);
    const created = ctx.clock.now();
    const batch: Batch = {
      id,
      nth,
      created,
      expires: created + EXPIRY_MS,
      cx,
      items,
      scenario: ctx.scenario(nth),
      status: "in_progress",
      cancelSteps: 0,
      deleted: false,
    };
    this.#batches.set(id, batch);
    ctx.progress.track(id);
    // The state at creation, even under an `instant` schedule: the API never creates a batch ended.
    return { json: this.#view(batch, false) };
  }

  /** `GET /v1/messages/batches/{id}`: the state now; then the retrieval counts as a poll. */
  retrieve(id: string): Reply {
    const batch = this.#find(id);
    const view = this.#view(batch);
    this.#ctx.progress.poll(id);
    return { json: view };
  }

  /** `GET /v1/messages/batches`: newest first, paged by `after_id` (older) or `before_id` (newer). */
  list(query: URLSearchParams): Reply {
    const limit = Number(query.get("limit") ?? 20);
    if (!Number.isInteger(limit) || limit < 1) {
      throw invalid("limit: Input should be greater than or equal to 1");
    }
    if (limit > 1000) throw invalid("limit: Input should be less than or equal to 1000");
    const afterId = query.get("after_id");
    const beforeId = query.get("before_id");
    if (afterId && beforeId) throw invalid("after_id and before_id cannot be used together");
    const cursor = (name: string, value: string) => {
      const batch = this.#batches.get(value);
      if (!batch) throw invalid(`${name}: no message batch with id ${value}`);
      return batch.nth;
    };
    const listed = this.#ctx.listing?.() ?? (() => true);
    let items = [...this.#batches.values()].filter((b) => !b.deleted && listed(b.id)).sort((a, b) =>
      b.nth - a.nth
    );
    let page: Batch[];
    if (beforeId) {
      const at = cursor("before_id", beforeId);
      items = items.filter((b) => b.nth > at);
      page = items.slice(-limit); // the newer batches closest to the cursor
    } else {
      if (afterId) {
        const at = cursor("after_id", afterId);
        items = items.filter((b) => b.nth < at);
      }
      page = items.slice(0, limit);
    }
    return {
      json: {
        data: page.map((b) => this.#view(b)),
        has_more: items.length > page.length,
        first_id: page[0]?.id ?? null,
        last_id: page.at(-1)?.id ?? null,
      } satisfies PageResponse<MessageBatch>,
    };
  }

  /**
   * `POST /v1/messages/batches/{id}/cancel`: an in-progress batch becomes `canceling`; canceling
   * again answers the batch unchanged; an ended batch cannot be canceled (400 [unverified]).
   */
  cancel(id: string): Reply {
    const batch = this.#find(id);
    this.#advance(batch);
    if (batch.status === "ended") {
      throw invalid(`Message batch ${id} has already ended and cannot be canceled`);
    }
    if (batch.status === "in_progress") {
      batch.status = "canceling";
      batch.cancelAt = this.#ctx.clock.now();
      batch.cancelSteps = this.#ctx.progress.steps(id);
    }
    return { json: this.#view(batch) };
  }

  /** `DELETE /v1/messages/batches/{id}`: only once processing has ended. */
  remove(id: string): Reply {
    const batch = this.#find(id);
    this.#advance(batch);
    if (batch.status !== "ended") {
      throw invalid(
        `Message batch ${id} is ${batch.status} and cannot be deleted; cancel it and wait for it to end`,
      );
    }
    batch.deleted = true;
    return { json: { id, type: "message_batch_deleted" } satisfies DeletedMessageBatch };
  }

  /** `GET /v1/messages/batches/{id}/results`: JSONL, in a fixed order other than the input's. */
  results(id: string): Reply {
    const batch = this.#find(id);
    this.#advance(batch);
    if (batch.status !== "ended" || !batch.results) {
      throw invalid(
        `Message batch ${id} has not finished processing; its results are not available yet`,
      );
    }
    if (this.#archived(batch) !== null) {
      const message = `Results of message batch ${id} are no longer available (archived)`;
      throw new HttpError(404, message, "not_found_error");
    }
    // Reversed input order: deterministic, and never the input order for two or more requests.
    const lines = [...batch.results].reverse().map((line) => JSON.stringify(line));
    const { malformedLines = 0, blankLines = 0 } = batch.scenario;
    const junk = [
      ...Array.from(
        { length: malformedLines },
        (_, i) => `{"custom_id":"malformed-${i + 1}","result":{"type":"succ`,
      ),
      ...Array.from({ length: blankLines }, () => ""),
    ];
    lines.splice(1, 0, ...junk);
    // The content type is a guess [unverified]; the SDK reads the body as bytes whatever it says.
    return { body: lines.join("\n") + "\n", headers: { "content-type": "application/binary" } };
  }

  /** Validates the create body: the envelope and each request's shape (see validate.ts for the rest). */
  #checkRequests(body: unknown, cx: ParamsContext): Item[] {
    if (!isObject(body)) throw invalid("body: Input should be a valid dictionary");
    for (const key of Object.keys(body)) {
      if (key !== "requests") throw invalid(`${key}: Extra inputs are not permitted`);
    }
    const requests = body.requests;
    if (requests === undefined) throw invalid("requests: Field required");
    if (!Array.isArray(requests)) throw invalid("requests: Input should be a valid list");
    const max = this.#ctx.limit("maxRequests", MAX_REQUESTS);
    if (requests.length < 1) {
      throw invalid("requests: List should have at least 1 item after validation, not 0");
    }
    if (requests.length > max) {
      throw invalid(
        `requests: List should have at most ${max} items after validation, not ${requests.length}`,
      );
    }
    // A knob, not the documented behaviour: refuse at create what the API reports as errored results.
    const strict = this.#ctx.limit("validateParamsAtCreate", 0) > 0;
    const seen = new Set<string>();
    return requests.map((r: unknown, i) => {
      const at = `requests.${i}`;
      if (!isObject(r)) throw invalid(`${at}: Input should be a valid dictionary`);
      for (const key of Object.keys(r)) {
        if (key !== "custom_id" && key !== "params") {
          throw invalid(`${at}.${key}: Extra inputs are not permitted`);
        }
      }
      const customId = r.custom_id;
      if (customId === undefined) throw invalid(`${at}.custom_id: Field required`);
      if (typeof customId !== "string") {
        throw invalid(`${at}.custom_id: Input should be a valid string`);
      }
      if (!CUSTOM_ID.test(customId)) {
        throw invalid(`${at}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
      }
      if (seen.has(customId)) {
        throw invalid(
          `${at}.custom_id: Duplicate custom_id '${customId}'; each request in a batch needs a unique custom_id`,
        );
      }
      seen.add(customId);
      if (r.params === undefined) throw invalid(`${at}.params: Field required`);
      checkShape(r.params, "batch", `${at}.params.`);
      if (strict) checkSemantics(r.params, "batch", cx, `${at}.params.`);
      return { customId, params: r.params };
    });
  }

  #find(id: string): Batch {
    const batch = this.#batches.get(id);
    if (!batch || batch.deleted) {
      throw new HttpError(404, `Message batch ${id} not found`, "not_found_error");
    }
    return batch;
  }

  /** Brings a batch's state up to date with the schedule and the clock. */
  #advance(batch: Batch): void {
    if (batch.status === "ended") return;
    const ctx = this.#ctx;
    const steps = ctx.progress.steps(batch.id);
    const now = ctx.clock.now();
    const schedule = ctx.options.schedule;
    // When the step that ends the batch was due: known exactly on a clock schedule; otherwise the
    // step is an act happening now (a poll, a test's step()).
    const dueAt = (k: number) =>
      schedule?.advance === "clock" ? Math.min(now, batch.created + k * schedule.stepMs) : now;
    const cancelDone = batch.status === "canceling" && steps >= batch.cancelSteps + 1;
    const runDone = batch.status === "in_progress" && steps >= 1;
    const due = cancelDone
      ? dueAt(batch.cancelSteps + 1)
      : runDone
      ? dueAt(1)
      : Number.POSITIVE_INFINITY;
    if (due > batch.expires && now >= batch.expires) {
      // The window closed first: the API never reports ended_at after expires_at.
      this.#end(batch, batch.status === "canceling" ? "canceled" : "expired", batch.expires);
    } else if (cancelDone) this.#end(batch, "canceled", due);
    else if (runDone) {
      if (batch.scenario.end === "expire") this.#end(batch, "expired", batch.expires);
      else this.#end(batch, "complete", due);
    }
  }

  /** Ends a batch: the first requests get results, the rest are canceled or expired. */
  #end(batch: Batch, how: "complete" | "canceled" | "expired", at: number): void {
    const n = batch.items.length;
    const partial = Math.max(0, Math.min(n, batch.scenario.processed ?? Math.floor(n / 2)));
    const processed = how === "complete" ? n : partial;
    batch.results = batch.items.map((item, i) => ({
      custom_id: item.customId,
      result: i < processed
        ? this.#run(batch, item)
        : { type: how === "canceled" ? "canceled" : "expired" },
    }));
    batch.status = "ended";
    batch.endedAt = at;
  }

  /** One request's result: the asynchronous validation, the scenario's failures, else a message. */
  #run(batch: Batch, item: Item): MessageBatchResult {
    const ctx = this.#ctx;
    const errored = (type: string, message: string): MessageBatchResult => ({
      type: "errored",
      error: errorEnvelope(type, message, makeId("req", ctx.next("request"))),
    });
    const { scenario } = batch;
    if (scenario.end === "fail") {
      return errored("invalid_request_error", 'Invalid request (batch scenario "fail")');
    }
    if (scenario.onlyErrors) return errored("api_error", "Internal server error");
    let params;
    try {
      params = checkSemantics(item.params, "batch", batch.cx);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return errored(errorType(error.status, error.code), error.message);
    }
    const marker = scenario.failPromptContains;
    if (marker !== undefined && promptOf(item.params).inputs.some((t) => t.includes(marker))) {
      return errored("api_error", "Internal server error");
    }
    const reply = ctx.replyFor?.({
      path: "/v1/messages",
      prompts: promptOf(item.params).inputs,
      batch: batch.id,
    });
    return {
      type: "succeeded",
      message: composeMessage(params, makeId("msg", ctx.next("message")), "batch", reply),
    };
  }

  #archived(batch: Batch): number | null {
    const at = batch.created + ARCHIVE_MS;
    return batch.status === "ended" && this.#ctx.clock.now() >= at ? at : null;
  }

  /** The MessageBatch object, brought up to date first (unless `advance` is false). */
  #view(batch: Batch, advance = true): MessageBatch {
    if (advance) this.#advance(batch);
    const ended = batch.status === "ended";
    const counts = {
      processing: ended ? 0 : batch.items.length,
      succeeded: 0,
      errored: 0,
      canceled: 0,
      expired: 0,
    };
    for (const line of batch.results ?? []) counts[line.result.type as keyof typeof counts]++;
    const archived = this.#archived(batch);
    return {
      id: batch.id,
      type: "message_batch",
      processing_status: batch.status,
      request_counts: counts,
      ended_at: batch.endedAt === undefined ? null : timestamp(batch.endedAt),
      created_at: timestamp(batch.created),
      expires_at: timestamp(batch.expires),
      archived_at: archived === null ? null : timestamp(archived),
      cancel_initiated_at: batch.cancelAt === undefined ? null : timestamp(batch.cancelAt),
      results_url: ended ? `${this.#ctx.origin}/v1/messages/batches/${batch.id}/results` : null,
    } satisfies MessageBatch;
  }
}
