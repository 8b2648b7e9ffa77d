/**
 * The Batch API: `POST /v1/batches`, retrieval (each retrieval is a poll that may move the
 * lifecycle on), the newest-first cursor list, and cancellation.
 *
 * Lifecycle, one state per schedule step:
 * `validating → in_progress (0 done) → in_progress (half done) → finalizing → completed`, or
 * `validating → failed` (the input file's lines are checked at creation and the errors revealed
 * on leaving `validating`), `… in_progress → expired` (scenario `end: "expire"`, or the emulator's
 * clock passing `expires_at`), and `cancelling → cancelled` one step after a cancel. Each
 * timestamp is set on entering its state. Results are computed with the same chat/responses
 * code the live endpoints use, written in processing order (never the input's) to an output file
 * (successes) and an error file (per-request failures, `batch_expired`, `batch_cancelled`).
 *
 * Validation error codes are the documented ones (`invalid_json_line`, `duplicate_custom_id`,
 * `url_mismatch`, `model_mismatch`, `empty_file`, `too_many_tasks`), plus `model_not_found`,
 * `missing_required_parameter`, `invalid_value` / `invalid_type` for a line's own fields, and
 * `token_limit_exceeded` for the scenario `end: "fail"`.
 * @module
 */
import {
  type BatchScenario,
  type EmulatorContext,
  type EmulatorRequest,
  HttpError,
  type Route,
} from "../../server.ts";
import { stableHash } from "../../answers.ts";
import { catchUp } from "../../schedule.ts";
import { chatCompletion, chatPrompts } from "./chat.ts";
import type { RequestContract } from "./contract.ts";
import {
  badValue,
  checkMetadata,
  checkNumber,
  checkObject,
  checkString,
  errorReply,
  invalid,
  isObject,
  missing,
  unrecognized,
} from "./errors.ts";
import { type FileStore, page } from "./files.ts";
import { nextId } from "./ids.ts";
import { responseObject, responsePrompts } from "./responses.ts";

/** Endpoints the real API batches. */
const ENDPOINTS = [
  "/v1/responses",
  "/v1/chat/completions",
  "/v1/embeddings",
  "/v1/completions",
  "/v1/moderations",
  "/v1/images/generations",
  "/v1/images/edits",
  "/v1/videos",
];
/** Endpoints the emulator can run a batch for. */
const SERVED = ["/v1/chat/completions", "/v1/responses"];

/** The Batch API's request limit per input file (limit name `maxRequests`). */
export const MAX_BATCH_REQUESTS = 50_000;
/** Steps a batch spends `in_progress` (its counts rise on each). */
const IN_PROGRESS_STEPS = 2;
/** At most this many validation errors are reported. */
const MAX_REPORTED_ERRORS = 100;
const DAY = 86_400;

type Status =
  | "validating"
  | "failed"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "expired"
  | "cancelling"
  | "cancelled";
const TERMINAL: readonly Status[] = ["failed", "completed", "expired", "cancelled"];

/** An entry of `errors.data`. */
interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

interface RequestLine {
  customId: string;
  body: Record<string, unknown>;
}

type Outcome =
  | { ok: true; body: Record<string, unknown>; input: number; output: number }
  | { ok: false; status: number; body: unknown };

interface Batch {
  id: string;
  nth: number;
  scenario: BatchScenario;
  endpoint: string;
  inputFileId: string;
  metadata: Record<string, string> | null;
  outputTtl: number | null;
  createdMs: number;
  expiresAt: number;
  status: Status;
  times: Partial<
    Record<
      | "in_progress_at"
      | "finalizing_at"
      | "completed_at"
      | "failed_at"
      | "expired_at"
      | "cancelling_at"
      | "cancelled_at",
      number
    >
  >;
  /** Validation errors found at creation (revealed on leaving `validating`). */
  invalid: BatchError[];
  requests: RequestLine[];
  model: string | null;
  errors: BatchError[] | null;
  /** Processing order: indices into `requests`. */
  order: number[];
  outcomes: Outcome[];
  /** How many requests (in processing order) are done. */
  processed: number;
  counts: { total: number; completed: number; failed: number };
  usage: { input: number; output: number };
  phase: number;
  /** Schedule steps applied so far. */
  step: number;
  lastMs: number;
  outputFileId: string | null;
  errorFileId: string | null;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/** The batches of one emulator. */
export class BatchStore {
  readonly #ctx: EmulatorContext;
  readonly #files: FileStore;
  readonly #known: readonly string[];
  readonly #batches = new Map<string, Batch>();
  readonly #contract?: RequestContract;

  /**
   * With a `contract`, the create body and every line's `body` are checked against the published
   * schemas too; a line's body that breaks its schema fails that request alone (a 400 line in the
   * error file, as a parameter the hand-written checks refuse does), not the batch.
   */
  constructor(
    ctx: EmulatorContext,
    files: FileStore,
    knownModels: readonly string[],
    contract?: RequestContract,
  ) {
    this.#ctx = ctx;
    this.#files = files;
    this.#known = knownModels;
    this.#contract = contract;
  }

  /** The routes of the Batch API. */
  routes(): Route[] {
    return [
      { method: "POST", path: /^\/v1\/batches$/, handle: (req) => ({ json: this.#create(req) }) },
      { method: "GET", path: /^\/v1\/batches$/, handle: (req) => ({ json: this.#list(req) }) },
      {
        method: "GET",
        path: /^\/v1\/batches\/(?<id>[^/]+)$/,
        handle: (req) => {
          const b = this.#require(req.params.id);
          this.#ctx.progress.poll(b.id);
          return { json: this.#object(this.#sync(b)) };
        },
      },
      {
        method: "POST",
        path: /^\/v1\/batches\/(?<id>[^/]+)\/cancel$/,
        handle: (req) => ({ json: this.#cancel(req.params.id) }),
      },
    ];
  }

  /** The prompts of a batch-create request: those of every line of its input file. */
  prompts(body: unknown): string[] {
    if (!isObject(body) || typeof body.input_file_id !== "string") return [];
    const file = this.#files.get(body.input_file_id);
    return file ? linePrompts(new TextDecoder().decode(file.bytes)) : [];
  }

  #require(id: string): Batch {
    const b = this.#batches.get(id);
    if (!b) {
      throw new HttpError(404, `No batch found with id '${id}'.`, "invalid_request_error", {
        param: "batch_id",
      });
    }
    return b;
  }

  #create(req: EmulatorRequest): Record<string, unknown> {
    const body = req.json();
    if (!isObject(body)) throw invalid("The request body must be a JSON object.", null);
    const allowed = [
      "input_file_id",
      "endpoint",
      "completion_window",
      "metadata",
      "output_expires_after",
    ];
    for (const key of Object.keys(body)) if (!allowed.includes(key)) throw unrecognized(key);
    if (body.input_file_id === undefined) throw missing("input_file_id");
    const fileId = checkString(body.input_file_id, "input_file_id");
    if (body.endpoint === undefined) throw missing("endpoint");
    if (!ENDPOINTS.includes(body.endpoint as string)) {
      throw badValue("endpoint", body.endpoint, ENDPOINTS);
    }
    const endpoint = body.endpoint as string;
    if (!SERVED.includes(endpoint)) {
      throw invalid(
        `The emulator runs batches for ${SERVED.join(" and ")} only, not ${endpoint}.`,
        "endpoint",
      );
    }
    if (body.completion_window === undefined) throw missing("completion_window");
    if (body.completion_window !== "24h") {
      throw badValue("completion_window", body.completion_window, ["24h"]);
    }
    const metadata = body.metadata === undefined ? null : checkMetadata(body.metadata);
    let outputTtl: number | null = null;
    if (body.output_expires_after !== undefined) {
      const oea = checkObject(body.output_expires_after, "output_expires_after");
      if (oea.anchor === undefined) throw missing("output_expires_after.anchor");
      if (oea.anchor !== "created_at") {
        throw badValue("output_expires_after.anchor", oea.anchor, ["created_at"]);
      }
      if (oea.seconds === undefined) throw missing("output_expires_after.seconds");
      outputTtl = checkNumber(
        oea.seconds,
        "output_expires_after.seconds",
        "integer",
        3600,
        2592000,
      );
    }
    const notFound = () =>
      new HttpError(
        400,
        `Cannot find file ${fileId}, or project proj_emulator does not have access to it.`,
        "invalid_request_error",
        {
          param: "file_id",
        },
      );
    const file = this.#files.get(fileId);
    if (!file) throw notFound();
    // Eventual consistency: a fresh upload may be invisible to the first attempts.
    const hiddenFor = this.#ctx.scenario(this.#batches.size + 1).fileInvisibleFor ?? 0;
    if (file.hiddenAttempts < hiddenFor) {
      file.hiddenAttempts++;
      throw notFound();
    }
    if (file.purpose !== "batch") {
      throw invalid(
        `The input file ${fileId} must be uploaded with purpose 'batch' (it has purpose '${file.purpose}').`,
        "input_file_id",
      );
    }
    this.#contract?.check("createBatch", body);

    const { id, n: nth } = nextId(this.#ctx, "batch", "batch_", 32);
    const now = this.#ctx.clock.now();
    const { requests, errors, model } = this.#validate(file.bytes, endpoint);
    const b: Batch = {
      id,
      nth,
      scenario: this.#ctx.scenario(nth),
      endpoint,
      inputFileId: fileId,
      metadata,
      outputTtl,
      createdMs: now,
      expiresAt: seconds(now) + DAY,
      status: "validating",
      times: {},
      invalid: errors,
      requests,
      model,
      errors: null,
      order: [],
      outcomes: [],
      processed: 0,
      counts: { total: 0, completed: 0, failed: 0 },
      usage: { input: 0, output: 0 },
      phase: 0,
      step: 0,
      lastMs: now,
      outputFileId: null,
      errorFileId: null,
    };
    this.#batches.set(id, b);
    this.#ctx.progress.track(id);
    // The real API answers a create with a `validating` batch, whatever happens next.
    return this.#object(b);
  }

  /** Checks an input file line by line, as the API does while a batch is `validating`. */
  #validate(
    bytes: Uint8Array,
    endpoint: string,
  ): { requests: RequestLine[]; errors: BatchError[]; model: string | null } {
    const errors: BatchError[] = [];
    const fail = (code: string, message: string, param: string | null, line: number | null) => {
      if (errors.length < MAX_REPORTED_ERRORS) errors.push({ code, message, param, line });
    };
    const requests: RequestLine[] = [];
    const seen = new Set<string>();
    let model: string | null = null;
    const lines = new TextDecoder().decode(bytes).split("\n");
    lines.forEach((raw, i) => {
      const line = i + 1;
      const text = raw.replace(/\r$/, "");
      if (!text.trim()) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return fail("invalid_json_line", "This line is not parseable as valid JSON.", null, line);
      }
      if (!isObject(parsed)) {
        return fail("invalid_json_line", "This line is not a JSON object.", null, line);
      }
      const { custom_id: customId, method, url, body } = parsed;
      if (customId === undefined) {
        return fail(
          "missing_required_parameter",
          "Missing required parameter: 'custom_id'.",
          "custom_id",
          line,
        );
      }
      if (typeof customId !== "string") {
        return fail(
          "invalid_type",
          "Invalid type for 'custom_id': expected a string.",
          "custom_id",
          line,
        );
      }
      if (seen.has(customId)) {
        return fail(
          "duplicate_custom_id",
          "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.",
          "custom_id",
          line,
        );
      }
      seen.add(customId);
      if (method === undefined) {
        return fail(
          "missing_required_parameter",
          "Missing required parameter: 'method'.",
          "method",
          line,
        );
      }
      if (method !== "POST") {
        return fail(
          "invalid_value",
          `Invalid value: '${String(method)}'. Supported values are: 'POST'.`,
          "method",
          line,
        );
      }
      if (url === undefined) {
        return fail(
          "missing_required_parameter",
          "Missing required parameter: 'url'.",
          "url",
          line,
        );
      }
      if (url !== endpoint) {
        return fail(
          "url_mismatch",
          `The URL provided for this request does not match the batch endpoint. Expected '${endpoint}', got '${
            String(url)
          }'.`,
          "url",
          line,
        );
      }
      if (body === undefined) {
        return fail(
          "missing_required_parameter",
          "Missing required parameter: 'body'.",
          "body",
          line,
        );
      }
      if (!isObject(body)) {
        return fail("invalid_type", "Invalid type for 'body': expected an object.", "body", line);
      }
      if (typeof body.model !== "string" || !body.model) {
        return fail(
          "missing_required_parameter",
          "Missing required parameter: 'body.model'.",
          "body.model",
          line,
        );
      }
      if (!this.#ctx.acceptsModel(body.model, this.#known)) {
        return fail(
          "model_not_found",
          `The model '${body.model}' does not exist or you do not have access to it.`,
          "body.model",
          line,
        );
      }
      if (model !== null && body.model !== model) {
        return fail(
          "model_mismatch",
          `The provided model '${body.model}' does not match the model of the other requests in this batch ('${model}'). All requests in a batch must use the same model.`,
          "body.model",
          line,
        );
      }
      model ??= body.model;
      const field = endpoint === "/v1/chat/completions" ? "messages" : "input";
      if (body[field] === undefined) {
        return fail(
          "missing_required_parameter",
          `Missing required parameter: 'body.${field}'.`,
          `body.${field}`,
          line,
        );
      }
      requests.push({ customId, body });
    });
    const maxRequests = this.#ctx.limit("maxRequests", MAX_BATCH_REQUESTS);
    if (errors.length === 0 && requests.length === 0) {
      fail("empty_file", "The batch input file is empty.", null, null);
    }
    if (requests.length > maxRequests) {
      fail(
        "too_many_tasks",
        `The batch input file contains ${requests.length} requests, more than the ${maxRequests} a batch may hold.`,
        null,
        null,
      );
    }
    return { requests, errors, model };
  }

  /** Applies every lifecycle step due for a batch (schedule steps, then the clock's expiry). */
  #sync(b: Batch): Batch {
    return catchUp(b, {
      schedule: this.#ctx.options.schedule,
      clock: this.#ctx.clock,
      progress: this.#ctx.progress,
      ended: (b) => TERMINAL.includes(b.status),
      expiresAt: (b) =>
        b.status === "validating" || b.status === "in_progress" ? b.expiresAt * 1000 : undefined,
      expire: (b) => this.#expireByClock(b, b.expiresAt * 1000),
      advance: (b, t) => this.#advance(b, t),
    });
  }

  #advance(b: Batch, t: number): void {
    const at = seconds(t);
    switch (b.status) {
      case "validating":
        if (this.#failValidation(b, at)) return;
        this.#start(b);
        b.status = "in_progress";
        b.times.in_progress_at = at;
        return;
      case "in_progress": {
        b.phase++;
        const expire = b.scenario.end === "expire";
        const goal = expire ? this.#expireTarget(b) : b.requests.length;
        if (b.phase < IN_PROGRESS_STEPS) {
          this.#setProcessed(b, Math.floor((goal * b.phase) / IN_PROGRESS_STEPS));
          return;
        }
        this.#setProcessed(b, goal);
        if (expire) return this.#finish(b, "expired", "expired_at", at, "batch_expired");
        b.status = "finalizing";
        b.times.finalizing_at = at;
        return;
      }
      case "finalizing":
        return this.#finish(b, "completed", "completed_at", at);
      case "cancelling":
        return this.#finish(b, "cancelled", "cancelled_at", at, "batch_cancelled");
    }
  }

  /** Leaves `validating` for `failed` when the input was invalid (or the scenario says so). */
  #failValidation(b: Batch, at: number): boolean {
    let errors = b.invalid;
    if (!errors.length && b.scenario.end === "fail") {
      errors = [{
        code: "token_limit_exceeded",
        message:
          `Enqueued token limit reached for ${b.model} in organization org-emulator. Limit: 2,000,000 enqueued tokens. Please try again once some in_progress batches have been completed.`,
        param: null,
        line: null,
      }];
    }
    if (!errors.length) return false;
    b.status = "failed";
    b.times.failed_at = at;
    b.errors = errors;
    return true;
  }

  #expireTarget(b: Batch): number {
    const n = b.requests.length;
    return Math.max(0, Math.min(n, b.scenario.processed ?? Math.floor(n / 2)));
  }

  /** The window closed before the batch finished: expired with what was done so far. */
  #expireByClock(b: Batch, expiresMs: number): void {
    const at = seconds(expiresMs);
    b.lastMs = Math.max(b.lastMs, expiresMs);
    if (b.status === "validating") {
      if (this.#failValidation(b, at)) return;
      this.#start(b);
    }
    this.#finish(b, "expired", "expired_at", at, "batch_expired");
  }

  /** Runs every request (outcomes are fixed when the batch starts) and picks the processing order. */
  #start(b: Batch): void {
    const n = b.requests.length;
    b.counts = { total: n, completed: 0, failed: 0 };
    b.order = [...Array(n).keys()].sort((x, y) =>
      stableHash(`${b.id}/${b.requests[x].customId}`) -
        stableHash(`${b.id}/${b.requests[y].customId}`) || x - y
    );
    if (n > 1 && b.order.every((v, i) => v === i)) b.order.push(b.order.shift()!);
    b.outcomes = b.requests.map((r) => this.#run(b, r));
  }

  #run(b: Batch, r: RequestLine): Outcome {
    const s = b.scenario;
    const prompts = b.endpoint === "/v1/chat/completions"
      ? chatPrompts(r.body)
      : responsePrompts(r.body);
    if (
      s.onlyErrors ||
      (s.failPromptContains !== undefined && prompts.some((p) => p.includes(s.failPromptContains!)))
    ) {
      const reply = errorReply(
        400,
        "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.",
        "invalid_prompt",
      );
      return { ok: false, status: 400, body: reply.json };
    }
    // Asked only once the line is valid, so that only a line that gets an answer meets `reply` rules.
    const reply = () => this.#ctx.replyFor?.({ path: b.endpoint, prompts, batch: b.id });
    try {
      if (b.endpoint === "/v1/chat/completions") {
        const body = chatCompletion(this.#ctx, r.body, this.#known, { batch: true, reply });
        this.#contract?.line(b.endpoint, r.body);
        const u = body.usage as { prompt_tokens: number; completion_tokens: number };
        return { ok: true, body, input: u.prompt_tokens, output: u.completion_tokens };
      }
      const body = responseObject(this.#ctx, { ...r.body, stream: undefined }, this.#known, reply);
      this.#contract?.line(b.endpoint, r.body);
      const u = body.usage as { input_tokens: number; output_tokens: number };
      return { ok: true, body, input: u.input_tokens, output: u.output_tokens };
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return {
        ok: false,
        status: error.status,
        body: errorReply(error.status, error.message, error.code, error.extra).json,
      };
    }
  }

  #setProcessed(b: Batch, k: number): void {
    b.processed = k;
    const counts = { total: b.requests.length, completed: 0, failed: 0 };
    const usage = { input: 0, output: 0 };
    for (const i of b.order.slice(0, k)) {
      const o = b.outcomes[i];
      if (o.ok) {
        counts.completed++;
        usage.input += o.input;
        usage.output += o.output;
      } else counts.failed++;
    }
    b.counts = counts;
    b.usage = usage;
  }

  /** Enters a terminal state and writes the output and error files. */
  #finish(
    b: Batch,
    status: Status,
    stamp: keyof Batch["times"],
    at: number,
    unrun?: "batch_expired" | "batch_cancelled",
  ): void {
    b.status = status;
    b.times[stamp] = at;
    if (!b.outcomes.length) return; // cancelled while validating: nothing ran
    if (status === "completed") this.#setProcessed(b, b.requests.length);
    const output: string[] = [];
    const failed: string[] = [];
    b.order.forEach((index, k) => {
      const r = b.requests[index];
      const { id } = nextId(this.#ctx, "batch_req", "batch_req_", 32);
      const { id: requestId } = nextId(this.#ctx, "req", "req_", 32);
      if (k >= b.processed) {
        const message = unrun === "batch_expired"
          ? "This request could not be executed before the completion window expired."
          : "This request was not executed because the batch was cancelled.";
        failed.push(
          JSON.stringify({
            id,
            custom_id: r.customId,
            response: null,
            error: { code: unrun, message },
          }),
        );
        return;
      }
      const o = b.outcomes[index];
      const line = JSON.stringify({
        id,
        custom_id: r.customId,
        response: { status_code: o.ok ? 200 : o.status, request_id: requestId, body: o.body },
        error: null,
      });
      (o.ok ? output : failed).push(line);
    });
    const corrupt = output.length ? output : failed;
    corruptLines(corrupt, b.scenario.malformedLines ?? 0, b.scenario.blankLines ?? 0);
    const expiresAt = at + (b.outputTtl ?? 30 * DAY);
    const write = (lines: string[], kind: string) => {
      if (!lines.length) return null;
      const bytes = new TextEncoder().encode(lines.map((l) => `${l}\n`).join(""));
      return this.#files.add(bytes, `${b.id}_${kind}.jsonl`, "batch_output", expiresAt).id;
    };
    b.outputFileId = write(output, "output");
    b.errorFileId = write(failed, "error");
  }

  #cancel(id: string): Record<string, unknown> {
    const b = this.#sync(this.#require(id));
    if (b.status === "cancelling") return this.#object(b);
    if (TERMINAL.includes(b.status)) {
      throw invalid(`Cannot cancel a batch with status '${b.status}'.`, null);
    }
    b.status = "cancelling";
    b.times.cancelling_at = seconds(this.#ctx.clock.now());
    b.lastMs = Math.max(b.lastMs, this.#ctx.clock.now());
    b.step = Math.max(b.step, this.#ctx.progress.steps(b.id));
    return this.#object(b);
  }

  #list(req: EmulatorRequest): Record<string, unknown> {
    const q = req.query;
    const limit = q.has("limit")
      ? checkNumber(Number(q.get("limit")), "limit", "integer", 1, 100)
      : 20;
    const listed = this.#ctx.listing?.() ?? (() => true);
    const all = [...this.#batches.values()].filter((b) => listed(b.id)).sort((x, y) =>
      y.nth - x.nth
    ).map((b) => this.#object(this.#sync(b)));
    return page(all, limit, q.get("after"));
  }

  /** The `batch` object of the API. */
  #object(b: Batch): Record<string, unknown> {
    const t = b.times;
    const started = b.outcomes.length > 0;
    return {
      id: b.id,
      object: "batch",
      endpoint: b.endpoint,
      // Absent until known: the definition types `model` a string, never null (nor do its examples show null).
      ...(b.status === "validating" || b.model === null ? {} : { model: b.model }),
      errors: b.errors ? { object: "list", data: b.errors } : null,
      input_file_id: b.inputFileId,
      completion_window: "24h",
      status: b.status,
      output_file_id: b.outputFileId,
      error_file_id: b.errorFileId,
      created_at: seconds(b.createdMs),
      in_progress_at: t.in_progress_at ?? null,
      expires_at: b.expiresAt,
      finalizing_at: t.finalizing_at ?? null,
      completed_at: t.completed_at ?? null,
      failed_at: t.failed_at ?? null,
      expired_at: t.expired_at ?? null,
      cancelling_at: t.cancelling_at ?? null,
      cancelled_at: t.cancelled_at ?? null,
      request_counts: started ? { ...b.counts } : { total: 0, completed: 0, failed: 0 },
      usage: {
        input_tokens: b.usage.input,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: b.usage.output,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: b.usage.input + b.usage.output,
      },
      metadata: b.metadata,
    };
  }
}

/** Inserts malformed (cut-off JSON) and blank lines among result lines, spread evenly. */
function corruptLines(lines: string[], malformed: number, blank: number): void {
  for (let i = malformed; i >= 1; i--) {
    const at = Math.floor((lines.length * i) / (malformed + 1));
    const source = lines[Math.min(at, lines.length - 1)] ?? '{"id":"batch_req_0","custom_id":"x"}';
    lines.splice(at, 0, source.slice(0, Math.max(1, Math.floor(source.length / 2))));
  }
  for (let i = blank; i >= 1; i--) {
    lines.splice(Math.floor((lines.length * i) / (blank + 1)) + (i % 2), 0, "");
  }
}

/** The prompt texts of a JSONL batch input (every line's body), for fault rules. */
export function linePrompts(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.trimStart().startsWith("{")) continue;
    try {
      const parsed = JSON.parse(line);
      if (isObject(parsed) && isObject(parsed.body)) {
        out.push(...chatPrompts(parsed.body), ...responsePrompts(parsed.body));
      }
    } catch { /* not a request line */ }
  }
  return out;
}
