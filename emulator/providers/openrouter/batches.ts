/**
 * OpenRouter's Batch API (https://openrouter.ai/docs/api/api-reference/batch/create-a-batch and
 * its sibling pages; https://openrouter.ai/docs/batch-quickstart): `POST /batches` with the
 * requests inline, `GET /batches/{id}` (results inline once terminal), `GET /batches` (newest
 * first, `after` = the previous page's `last_id`), `GET /batches/{id}/results` (cursor pages) and
 * `DELETE /batches/{id}` (terminal batches only, else 409) and `POST /batches/{id}/cancel`
 * (https://openrouter.ai/docs/api/api-reference/batch/cancel-a-batch: enabled per organization,
 * 403 elsewhere; the answer is the batch as it is, still `in_progress`, and the next step makes it
 * `cancelled` with no result rows, or lets a batch already `finalizing` complete; 409 once final).
 *
 * Paths: the API reference serves them under `/api/v1`; the quickstart says `/api/beta/batches`,
 * and a client that verified the wire live (crate `openrouter-batch`, 2026-08) used the beta path.
 * Both are served here, over one store. unverified: that the live API still serves the beta path.
 *
 * Lifecycle, one state per schedule step (like the OpenAI emulator's):
 * `validating → in_progress (0 done) → in_progress (half done) → finalizing → completed`, or
 * `validating → failed` with `error.message` (a request body the chat endpoint would refuse; the
 * documented "OpenRouter checks each request after it accepts the batch"), or `… → expired`
 * (scenario `end: "expire"`, or the emulator's clock passing `expires_at`, 24 h after creation).
 * Answers come from the sync endpoint's own builder, so a batch answer equals the sync answer to
 * the same request except its `id`, `created` and `usage.cost` (the batch price, half of sync).
 * `cancelling` exists in the status enum but nothing here reaches it (the cancel page says a batch
 * stays `in_progress` until the provider confirms).
 *
 * Scenarios (`EmulatorOptions.batches`): `end: "fail"` (validation fails), `end: "expire"` with
 * `processed` (default half), `failPromptContains` and `onlyErrors` (per-request errors inside a
 * completed batch: `response: null`, `error` set), `cancelForbidden` (a cancel gets 403).
 * `malformedLines`, `blankLines` and
 * `fileInvisibleFor` concern result files and uploads, which OpenRouter does not have: ignored.
 * @module
 */
import { Buffer } from "node:buffer";
import { hexId, stableHash } from "../../answers.ts";
import { catchUp } from "../../schedule.ts";
import {
  type BatchScenario,
  type EmulatorContext,
  type EmulatorRequest,
  HttpError,
  type Reply,
  type Route,
} from "../../server.ts";
import { chatPrompts } from "../openai.ts";
import { invalid, type Item, parseSubmit } from "./submit.ts";

/** "Batch requests are typically billed at 50% of the model's standard per-token price." */
export const BATCH_PRICE_FACTOR = 0.5;
const DAY_MS = 86_400_000;
/** Steps a batch spends `in_progress` (its counts rise on each). */
const IN_PROGRESS_STEPS = 2;

/** BatchObjectStatus. */
const STATUSES = [
  "validating",
  "in_progress",
  "finalizing",
  "completed",
  "failed",
  "expired",
  "cancelling",
  "cancelled",
] as const;
type Status = typeof STATUSES[number];
/** The statuses a batch ends in (the delete page names them). */
export const TERMINAL_STATUSES: readonly string[] = ["completed", "failed", "expired", "cancelled"];

/** What the batch store asks of the OpenRouter provider: the sync endpoint's checks and answers. */
export interface BatchHost {
  acceptsModel(model: string): boolean;
  /** Throws the {@link HttpError} the sync endpoint answers `body` with, if any. */
  check(body: Record<string, unknown>): void;
  /** The sync endpoint's completion for `body`; `reply` is asked once the body proved valid. */
  answer(body: Record<string, unknown>, reply: () => string | undefined): Record<string, unknown>;
  /** The upstream provider's name for a model, as sync answers name it. */
  upstream(model: string): string;
}

/** A request's outcome, fixed when the batch starts. */
type Outcome =
  | { ok: true; body: Record<string, unknown>; prompt: number; completion: number; cost: number }
  | { ok: false; error: ResultError };

interface ResultError {
  message: string;
  type: string;
  param: string | null;
}

/** One entry of `results`. */
interface Result {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string | null; body: unknown } | null;
  error: ResultError | null;
}

interface Batch {
  id: string;
  nth: number;
  scenario: BatchScenario;
  endpoint: string;
  model: string;
  only: string[] | null;
  items: Item[];
  createdMs: number;
  expiresMs: number;
  status: Status;
  /** Schedule steps applied so far, and the time of the last. */
  step: number;
  lastMs: number;
  phase: number;
  provider: string | null;
  error: string | null;
  finalizedMs: number | null;
  /** Processing order: indices into `items`. */
  order: number[];
  outcomes: Outcome[];
  /** How many requests (in processing order) are done. */
  processed: number;
  results: Result[] | null;
  deleted: boolean;
  /** A cancel was accepted; the next lifecycle step stops the batch. */
  cancelRequested: boolean;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/** The batches of one OpenRouter emulator. */
export class OpenRouterBatches {
  readonly #ctx: EmulatorContext;
  readonly #host: BatchHost;
  readonly #batches = new Map<string, Batch>();

  constructor(ctx: EmulatorContext, host: BatchHost) {
    this.#ctx = ctx;
    this.#host = host;
  }

  /** The routes, under the reference's `/api/v1` and the quickstart's `/api/beta`. */
  routes(): Route[] {
    return ["/api/v1", "/api/beta"].flatMap((base) => {
      const at = (rest: string) => new RegExp(`^${base.replaceAll("/", "\\/")}\\/batches${rest}$`);
      const id = "\\/(?<id>[^/]+)";
      return [
        { method: "POST", path: at(""), handle: (req) => this.#create(req) },
        { method: "GET", path: at(""), handle: (req) => ({ json: this.#list(req.query) }) },
        {
          method: "GET",
          path: at(id),
          handle: (req) => {
            const b = this.#sync(this.#require(req.params.id));
            const view = this.#object(b, true);
            this.#ctx.progress.poll(b.id);
            return { json: view };
          },
        },
        {
          method: "GET",
          path: at(`${id}\\/results`),
          handle: (req) => ({ json: this.#results(req.params.id, req.query) }),
        },
        {
          method: "DELETE",
          path: at(id),
          handle: (req) => ({ json: this.#delete(req.params.id) }),
        },
        {
          method: "POST",
          path: at(`${id}\\/cancel`),
          handle: (req) => ({ json: this.#cancel(req.params.id) }),
        },
      ] satisfies Route[];
    });
  }

  #require(id: string): Batch {
    const b = this.#batches.get(id);
    if (!b || b.deleted) throw new HttpError(404, `Batch ${id} not found`);
    return b;
  }

  /** `POST /batches`: the envelope is checked now (./submit.ts), the bodies while `validating`. */
  #create(req: EmulatorRequest): Reply {
    const ctx = this.#ctx;
    const { endpoint, model, only, items } = parseSubmit(ctx, req, this.#host.acceptsModel);

    const nth = ctx.next("or-batch");
    const id = `batch_${hexId(nth * 16 + 9, 24)}`;
    const now = ctx.clock.now();
    const b: Batch = {
      id,
      nth,
      scenario: ctx.scenario(nth),
      endpoint,
      model,
      only,
      items,
      createdMs: now,
      expiresMs: now + DAY_MS,
      status: "validating",
      step: 0,
      lastMs: now,
      phase: 0,
      provider: null,
      error: null,
      finalizedMs: null,
      order: [],
      outcomes: [],
      processed: 0,
      results: null,
      deleted: false,
      cancelRequested: false,
    };
    this.#batches.set(id, b);
    ctx.progress.track(id);
    // "A successful submission returns 202 Accepted with status: \"validating\"", whatever follows.
    return { status: 202, json: this.#object(b, false) };
  }

  /** Applies every lifecycle step due for a batch (schedule steps, then the clock's expiry). */
  #sync(b: Batch): Batch {
    return catchUp(b, {
      schedule: this.#ctx.options.schedule,
      clock: this.#ctx.clock,
      progress: this.#ctx.progress,
      ended: (b) => TERMINAL_STATUSES.includes(b.status),
      expiresAt: (b) =>
        b.status === "validating" || b.status === "in_progress" ? b.expiresMs : undefined,
      expire: (b) => this.#expireByClock(b),
      advance: (b, t) => this.#advance(b, t),
    });
  }

  #advance(b: Batch, t: number): void {
    // The provider confirms a cancel at the next step; a batch already finalizing ends first.
    if (b.cancelRequested && (b.status === "validating" || b.status === "in_progress")) {
      return this.#cancelled(b, t);
    }
    switch (b.status) {
      case "validating":
        if (this.#failValidation(b, t)) return;
        this.#start(b);
        b.status = "in_progress";
        return;
      case "in_progress": {
        b.phase++;
        const expire = b.scenario.end === "expire";
        const goal = expire ? this.#partial(b) : b.items.length;
        b.processed = Math.floor((goal * Math.min(b.phase, IN_PROGRESS_STEPS)) / IN_PROGRESS_STEPS);
        if (b.phase < IN_PROGRESS_STEPS) return;
        if (expire) return this.#finish(b, "expired", t);
        b.status = "finalizing";
        return;
      }
      case "finalizing":
        return this.#finish(b, "completed", t);
    }
  }

  /** Requests done when a batch expires: the scenario's `processed`, default half. */
  #partial(b: Batch): number {
    const n = b.items.length;
    return Math.max(0, Math.min(n, b.scenario.processed ?? Math.floor(n / 2)));
  }

  /**
   * Leaves `validating` for `failed` when a request body is one the chat endpoint refuses (or the
   * scenario says so). unverified: the wording of `error.message`.
   */
  #failValidation(b: Batch, t: number): boolean {
    let reason: string | null = null;
    if (b.scenario.end === "fail") {
      reason = `Batch validation failed: ${b.model} has no batch endpoint available`;
    } else {
      for (const item of b.items) {
        try {
          this.#host.check(item.body);
        } catch (error) {
          if (!(error instanceof HttpError)) throw error;
          reason = `Request ${item.customId} is invalid: ${error.message}`;
          break;
        }
      }
    }
    if (reason === null) return false;
    b.status = "failed";
    b.error = reason;
    b.finalizedMs = t;
    b.results = [];
    return true;
  }

  /** The window closed first: expired with what was done so far. */
  #expireByClock(b: Batch): void {
    b.lastMs = Math.max(b.lastMs, b.expiresMs);
    if (b.status === "validating") {
      if (this.#failValidation(b, b.expiresMs)) return;
      this.#start(b);
    }
    this.#finish(b, "expired", b.expiresMs);
  }

  /** Assigns the provider, picks the processing order and fixes every request's outcome. */
  #start(b: Batch): void {
    b.provider = b.only?.[0] ?? this.#host.upstream(b.model);
    const n = b.items.length;
    b.order = [...Array(n).keys()].sort((x, y) =>
      stableHash(`${b.id}/${b.items[x].customId}`) - stableHash(`${b.id}/${b.items[y].customId}`) ||
      x - y
    );
    b.outcomes = b.items.map((item) => this.#run(b, item));
  }

  #run(b: Batch, item: Item): Outcome {
    const s = b.scenario;
    const prompts = chatPrompts(item.body);
    if (
      s.onlyErrors ||
      (s.failPromptContains !== undefined && prompts.some((p) => p.includes(s.failPromptContains!)))
    ) {
      // unverified: the type and wording of a per-request failure.
      return {
        ok: false,
        error: { message: "Provider returned error", type: "server_error", param: null },
      };
    }
    const reply = () => this.#ctx.replyFor?.({ path: b.endpoint, prompts, batch: b.id });
    const body = this.#host.answer(item.body, reply);
    const usage = body.usage as {
      prompt_tokens: number;
      completion_tokens: number;
      total_tokens: number;
      cost: number;
    };
    // The batch price. unverified: that a result's own usage carries `cost` (the reference's
    // chat usage in results has none; the batch-level usage has it).
    const cost = Number((usage.cost * BATCH_PRICE_FACTOR).toFixed(9));
    return {
      ok: true,
      body: { ...body, usage: { ...usage, cost } },
      prompt: usage.prompt_tokens,
      completion: usage.completion_tokens,
      cost,
    };
  }

  /**
   * Enters a terminal state and writes `results`: one per request, in processing order. A request
   * an expired batch never ran gets an error (decided: the guide promises one result per request).
   */
  #finish(b: Batch, status: "completed" | "expired", t: number): void {
    if (status === "completed") b.processed = b.items.length;
    b.status = status;
    b.finalizedMs = t;
    b.results = b.order.map((index, k) => {
      const item = b.items[index];
      const id = `batch_req_${hexId(this.#ctx.next("or-batch-req") * 16 + 10, 24)}`;
      const o = b.outcomes[index];
      if (k >= b.processed) {
        // unverified: the type and wording for a request the window closed on.
        const error = {
          message: "This request was not processed before the batch expired",
          type: "batch_expired",
          param: null,
        };
        return { id, custom_id: item.customId, response: null, error };
      }
      if (!o.ok) return { id, custom_id: item.customId, response: null, error: o.error };
      // unverified: that `request_id` is the generation id.
      const response = { status_code: 200, request_id: o.body.id as string, body: o.body };
      return { id, custom_id: item.customId, response, error: null };
    });
  }

  /**
   * Cancelled: "OpenRouter returns no result rows for a cancelled batch, and the provider still
   * charges for the requests that finished before the cancellation" (their usage stays).
   */
  #cancelled(b: Batch, t: number): void {
    b.status = "cancelled";
    b.finalizedMs = t;
    b.results = [];
  }

  /** `request_counts`: requests an expired batch never ran count as failed (they have an error). */
  #counts(b: Batch): { total: number; completed: number; failed: number } {
    const counts = { total: b.items.length, completed: 0, failed: 0 };
    // A cancelled batch has no rows; its counts are those of the requests that ran.
    if (b.results && b.status !== "cancelled") {
      for (const r of b.results) r.error ? counts.failed++ : counts.completed++;
      return counts;
    }
    for (const i of b.order.slice(0, b.processed)) {
      b.outcomes[i].ok ? counts.completed++ : counts.failed++;
    }
    return counts;
  }

  /** Batch-level `usage` over the requests done so far; null before any ran. */
  #usage(b: Batch): Record<string, number> | null {
    if (!b.outcomes.length) return null;
    let prompt = 0, completion = 0, cost = 0;
    for (const i of b.order.slice(0, b.processed)) {
      const o = b.outcomes[i];
      if (!o.ok) continue;
      prompt += o.prompt;
      completion += o.completion;
      cost += o.cost;
    }
    return {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      cost: Number(cost.toFixed(9)),
    };
  }

  /** The BatchObject; `results` only when one terminal batch is read (list items: null). */
  #object(b: Batch, withResults: boolean): Record<string, unknown> {
    return {
      id: b.id,
      object: "batch",
      endpoint: b.endpoint,
      model: b.model,
      provider: b.provider,
      completion_window: "24h",
      status: b.status,
      created_at: seconds(b.createdMs),
      expires_at: seconds(b.expiresMs),
      finalized_at: b.finalizedMs === null ? null : seconds(b.finalizedMs),
      request_counts: this.#counts(b),
      error: b.error === null ? null : { message: b.error },
      usage: this.#usage(b),
      results: withResults && b.results ? b.results : null,
    };
  }

  /** `GET /batches`: newest first; `after` = the previous page's `last_id`; `status` repeatable. */
  #list(query: URLSearchParams): Record<string, unknown> {
    const limit = pageSize(query, "limit", 20, 100);
    const statuses = query.getAll("status");
    const unknown = statuses.find((x) => !(STATUSES as readonly string[]).includes(x));
    // unverified: the answer to an unknown status (the list's documented 400).
    if (unknown !== undefined) {
      throw invalid(`status: ${unknown} is not one of ${STATUSES.join(", ")}`);
    }
    const after = timestamp(query, "created_after");
    const before = timestamp(query, "created_before");
    const listed = this.#ctx.listing?.() ?? (() => true);
    let all = [...this.#batches.values()]
      .filter((b) => !b.deleted && listed(b.id))
      .map((b) => this.#sync(b))
      .filter((b) => !statuses.length || statuses.includes(b.status))
      .filter((b) => after === null || seconds(b.createdMs) > after)
      .filter((b) => before === null || seconds(b.createdMs) < before)
      .sort((x, y) => y.nth - x.nth);
    const cursor = query.get("after");
    if (cursor !== null) {
      const from = this.#batches.get(cursor);
      // unverified: the answer to an unknown cursor.
      if (!from) throw invalid(`after: no batch with id ${cursor}`);
      all = all.filter((b) => b.nth < from.nth);
    }
    const page = all.slice(0, limit);
    return {
      object: "list",
      data: page.map((b) => this.#object(b, false)),
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: all.length > page.length,
    };
  }

  /**
   * `GET /batches/{id}/results`: the same results, a page at a time; the cursor encodes the offset
   * as the reference's example does (`v1:<batch id>:<offset>`, base64url). unverified: the answer
   * for a batch not yet terminal (409, as for delete) and the default page size.
   */
  #results(id: string, query: URLSearchParams): Record<string, unknown> {
    const b = this.#sync(this.#require(id));
    if (!b.results) {
      throw new HttpError(409, `Batch ${id} is ${b.status}; its results are not available yet`);
    }
    const limit = pageSize(query, "limit", 100, 1000);
    let offset = 0;
    const cursor = query.get("cursor");
    if (cursor !== null) {
      const m = Buffer.from(cursor, "base64url").toString("utf8").match(/^v1:(.+):(\d+)$/);
      if (!m || m[1] !== id) throw invalid("cursor is not a cursor of this batch's results");
      offset = Number(m[2]);
    }
    const data = b.results.slice(offset, offset + limit);
    const end = offset + data.length;
    const more = end < b.results.length;
    return {
      object: "list",
      data,
      has_more: more,
      next_cursor: more ? Buffer.from(`v1:${id}:${end}`).toString("base64url") : null,
    };
  }

  /**
   * `POST /batches/{id}/cancel`: 403 where cancellation is off for the organization; 409 once the
   * batch has a final status; otherwise the batch as it is (repeating the call is safe).
   * unverified: the wording of the 403 and 409 messages.
   */
  #cancel(id: string): Record<string, unknown> {
    const b = this.#sync(this.#require(id));
    if (b.scenario.cancelForbidden) {
      throw new HttpError(403, "Batch cancellation is not enabled for this organization");
    }
    if (TERMINAL_STATUSES.includes(b.status)) {
      throw new HttpError(409, `Batch ${id} is ${b.status}; it has a final status already`);
    }
    b.cancelRequested = true;
    return this.#object(b, false);
  }

  /** `DELETE /batches/{id}`: a terminal batch only ("Batches still in progress return 409"). */
  #delete(id: string): Record<string, unknown> {
    const b = this.#sync(this.#require(id));
    if (!TERMINAL_STATUSES.includes(b.status)) {
      throw new HttpError(
        409,
        `Batch ${id} is ${b.status}; only a batch in a terminal status (completed, failed, expired, cancelled) can be deleted`,
      );
    }
    b.deleted = true;
    return {
      id,
      object: "batch",
      deletion: {
        openrouter: "deleted",
        ...(b.provider ? { upstream: { provider: b.provider, status: "deleted" } } : {}),
      },
    };
  }
}

/** A page size query parameter: an integer from 1 to `max`. unverified: the default. */
function pageSize(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw invalid(`${name} must be an integer from 1 through ${max}`);
  }
  return n;
}

/** A `created_after`/`created_before` bound in seconds. unverified: its format (seconds, a date). */
function timestamp(query: URLSearchParams, name: string): number | null {
  const raw = query.get(name);
  if (raw === null) return null;
  const n = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw) / 1000;
  if (!Number.isFinite(n)) throw invalid(`${name} must be a Unix timestamp or an ISO 8601 date`);
  return n;
}
