/**
 * A hand-written contract of OpenRouter's Batch API, from its API reference: each operation's
 * method and path, query parameters, request body and answers (status codes and JSON Schemas
 * written from the reference and the SDK model pages it generates), each with the page it comes
 * from, plus the rules a schema cannot say (the body's field order, one result per request, results
 * only on a terminal batch). {@link checkOpenRouterBatchTraffic} compares a recorded exchange log
 * (an emulator's `log.entries`) with it, so the emulator's answers and a client's requests are
 * both held to the published API.
 *
 * Facts marked `unverified` in {@link OPENROUTER_BATCH_CONTRACT} rest on third-party sources or on
 * the emulator's own decision; everything else is on the cited page.
 * @module
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import type { LoggedRequest, RequestLog } from "../log.ts";

const DOCS = "https://openrouter.ai/docs";
const REF = `${DOCS}/api/api-reference/batch`;
const SDK = `${DOCS}/client-sdks/typescript/models`;

type Schema = Record<string, unknown>;

/** The statuses a batch ends in ("a terminal status" on the delete page). */
export const TERMINAL = ["completed", "failed", "expired", "cancelled"];
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
];
const nullable = (schema: Schema): Schema => ({ anyOf: [schema, { type: "null" }] });
const int = { type: "integer" };
const str = { type: "string" };

/**
 * BatchErrorResponse: only `error.message` is relied on (the SDK reads it); `code` as OpenRouter's
 * sync errors carry it.
 */
const ERROR: Schema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["message"],
      properties: { message: str, code: int, metadata: { type: "object" } },
    },
  },
};

/** A chat.completion inside a result (BatchObject's BodyChatCompletion, OpenRouter's Choice). */
const CHAT_COMPLETION: Schema = {
  type: "object",
  required: ["id", "choices", "created", "model", "object"],
  properties: {
    id: str,
    object: { const: "chat.completion" },
    created: int,
    model: str,
    provider: nullable(str),
    system_fingerprint: nullable(str),
    choices: {
      type: "array",
      items: {
        type: "object",
        required: ["finish_reason", "index", "logprobs", "message", "native_finish_reason"],
        properties: {
          index: int,
          finish_reason: nullable(str),
          native_finish_reason: nullable(str),
          logprobs: nullable({ type: "object" }),
          message: {
            type: "object",
            required: ["content", "refusal", "role"],
            properties: {
              role: { const: "assistant" },
              content: nullable(str),
              refusal: nullable(str),
            },
          },
        },
      },
    },
    usage: {
      type: "object",
      required: ["prompt_tokens", "completion_tokens", "total_tokens"],
      // unverified: `cost` (sync answers carry it; the reference's result usage does not list it).
      properties: {
        prompt_tokens: int,
        completion_tokens: int,
        total_tokens: int,
        cost: { type: "number" },
      },
    },
  },
};

/** Result: `{id, custom_id, response|null, error|null}`. */
const RESULT: Schema = {
  type: "object",
  additionalProperties: false,
  required: ["id", "custom_id", "response", "error"],
  properties: {
    id: str,
    custom_id: str,
    response: nullable({
      type: "object",
      additionalProperties: false,
      required: ["status_code", "request_id", "body"],
      properties: {
        status_code: int,
        request_id: nullable(str),
        // A body of the batch's endpoint: chat completions are modelled (the endpoint Loom and the
        // emulator use); the other three endpoints' bodies are only required to be objects.
        body: {
          type: "object",
          if: { required: ["object"], properties: { object: { const: "chat.completion" } } },
          then: CHAT_COMPLETION,
        },
      },
    }),
    error: nullable({
      type: "object",
      additionalProperties: false,
      required: ["message", "type", "param"],
      properties: { message: str, type: str, param: nullable(str), error_type: str },
    }),
  },
};

/** BatchObject (and BatchListItem, whose `results` is always null). */
const batchObject = (results: Schema): Schema => ({
  type: "object",
  additionalProperties: false,
  required: [
    "id",
    "object",
    "endpoint",
    "model",
    "completion_window",
    "status",
    "created_at",
    "finalized_at",
    "request_counts",
    "error",
    "usage",
    "results",
  ],
  properties: {
    id: str,
    object: { const: "batch" },
    endpoint: str,
    model: str,
    provider: nullable(str),
    completion_window: { const: "24h" },
    status: { enum: STATUSES },
    created_at: int,
    expires_at: nullable(int),
    finalized_at: nullable(int),
    request_counts: {
      type: "object",
      additionalProperties: false,
      required: ["total", "completed", "failed"],
      properties: { total: int, completed: int, failed: int },
    },
    error: nullable({
      type: "object",
      additionalProperties: false,
      required: ["message"],
      properties: { message: str },
    }),
    usage: nullable({
      type: "object",
      required: ["prompt_tokens", "completion_tokens", "total_tokens"],
      properties: {
        prompt_tokens: int,
        completion_tokens: int,
        total_tokens: int,
        cost: nullable({ type: "number" }),
      },
    }),
    results,
  },
});

const integerText = (max: number): Schema => ({
  type: "string",
  pattern: "^[0-9]+$",
  maxLength: String(max).length,
});

/** One operation of the API. */
export interface BatchOperation {
  /** The reference's operationId. */
  name: string;
  method: string;
  /** Below the API base (`/api/v1`). */
  path: RegExp;
  reference: string;
  /** The query string (values as strings). */
  query?: Schema;
  /** The JSON body. */
  request?: Schema;
  /** The success status and its answer. */
  success: { status: number; answer: Schema };
  /** Documented error statuses (their answers are BatchErrorResponse). */
  errors: readonly number[];
  /** Rules a schema cannot state; each returns what is wrong, or null. */
  rules?: readonly Rule[];
}

/** A cross-field rule over one exchange. */
interface Rule {
  direction: "request" | "answer";
  reference: string;
  check(entry: LoggedRequest): string | null;
}

const objectOf = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {};

/** The contract: one entry per operation of the reference's Batch section. */
export const OPENROUTER_BATCH_CONTRACT: readonly BatchOperation[] = [
  {
    name: "createBatches",
    method: "POST",
    path: /^\/batches$/,
    reference: `${REF}/create-a-batch`,
    request: {
      type: "object",
      additionalProperties: false,
      required: ["endpoint", "model", "requests"],
      properties: {
        endpoint: {
          enum: ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings"],
        },
        model: { type: "string", minLength: 1 },
        completion_window: { const: "24h" },
        // "Only provider.only and provider.allow_fallbacks are supported."
        provider: nullable({
          type: "object",
          additionalProperties: false,
          properties: { only: { type: "array", items: str }, allow_fallbacks: { type: "boolean" } },
        }),
        // From the Batch API guide ("Set callback_url to receive a webhook").
        callback_url: str,
        requests: {
          type: "array",
          minItems: 1,
          // The guide: "Up to 5,000 requests and 200 MB per batch".
          maxItems: 5000,
          items: {
            type: "object",
            additionalProperties: false,
            required: ["custom_id", "body"],
            // unverified: the 64-character cap (observed live by the openrouter-batch crate).
            properties: {
              custom_id: { type: "string", minLength: 1, maxLength: 64 },
              body: { type: "object" },
            },
          },
        },
      },
    },
    success: { status: 202, answer: batchObject({ type: "null" }) },
    errors: [400, 401, 402, 403, 404, 413, 422, 429, 500, 502],
    rules: [
      {
        direction: "request",
        reference: `${DOCS}/batch-quickstart`,
        check: (e) => {
          const keys = Object.keys(objectOf(e.body));
          const at = (k: string) => keys.indexOf(k);
          return at("requests") >= 0 &&
              (at("requests") < at("endpoint") || at("requests") < at("model"))
            ? "endpoint and model must be serialized before requests (the API stream-parses the body)"
            : null;
        },
      },
      {
        direction: "request",
        reference: `${DOCS}/batch-quickstart`,
        check: (e) => {
          const body = objectOf(e.body);
          const requests = Array.isArray(body.requests) ? body.requests : [];
          const ids = requests.map((r) => objectOf(r).custom_id);
          if (new Set(ids).size !== ids.length) return "custom_id values must be unique in a batch";
          const other = requests.find((r) => {
            const m = objectOf(objectOf(r).body).model;
            return m !== undefined && m !== body.model;
          });
          return other ? "a request body's model must be omitted or equal the batch's model" : null;
        },
      },
      {
        direction: "answer",
        reference: `${DOCS}/batch-quickstart`,
        check: (e) =>
          objectOf(e.answer).status === "validating"
            ? null
            : 'a created batch answers 202 with status "validating"',
      },
    ],
  },
  {
    name: "listBatches",
    method: "GET",
    path: /^\/batches$/,
    reference: `${REF}/list-batches`,
    query: {
      type: "object",
      additionalProperties: false,
      properties: {
        limit: integerText(100),
        after: str,
        status: { enum: STATUSES },
        created_after: str,
        created_before: str,
      },
    },
    success: {
      status: 200,
      answer: {
        type: "object",
        additionalProperties: false,
        required: ["object", "data", "first_id", "last_id", "has_more"],
        properties: {
          object: { const: "list" },
          // BatchListItem: "results is always null in list responses".
          data: { type: "array", items: batchObject({ type: "null" }) },
          first_id: nullable(str),
          last_id: nullable(str),
          has_more: { type: "boolean" },
        },
      },
    },
    errors: [400, 401, 429, 500, 502],
    rules: [{
      direction: "answer",
      reference: `${SDK}/batchlistresponse`,
      check: (e) => {
        const data = objectOf(e.answer).data;
        const created = Array.isArray(data)
          ? data.map((b) => objectOf(b).created_at as number)
          : [];
        return created.every((t, i) => i === 0 || t <= created[i - 1])
          ? null
          : "a page lists the newest batches first";
      },
    }],
  },
  {
    name: "getBatches",
    method: "GET",
    path: /^\/batches\/[^/]+$/,
    reference: `${REF}/get-a-batch`,
    query: { type: "object", additionalProperties: false },
    success: { status: 200, answer: batchObject(nullable({ type: "array", items: RESULT })) },
    errors: [401, 402, 404, 410, 429, 500, 502],
    rules: [
      {
        direction: "answer",
        reference: `${REF}/get-a-batch`,
        check: (e) => {
          const b = objectOf(e.answer);
          const terminal = TERMINAL.includes(b.status as string);
          if (terminal !== Array.isArray(b.results)) {
            return terminal
              ? "a batch in a terminal status includes its results"
              : "results appear only once the batch is terminal";
          }
          if (b.status === "failed" && b.error === null) {
            return "a failed batch reports its reason in error.message";
          }
          return null;
        },
      },
      {
        direction: "answer",
        // Third-party, live-verified (crate openrouter-batch): exactly one of response and error.
        reference: "https://docs.rs/crate/openrouter-batch/0.1.2",
        check: (e) => {
          const results = objectOf(e.answer).results;
          if (!Array.isArray(results)) return null;
          const bad = results.find((r) =>
            (objectOf(r).response === null) === (objectOf(r).error === null)
          );
          return bad
            ? `result ${objectOf(bad).custom_id} must carry exactly one of response and error`
            : null;
        },
      },
    ],
  },
  {
    name: "getBatchResults",
    method: "GET",
    path: /^\/batches\/[^/]+\/results$/,
    reference: `${REF}/get-batch-results`,
    query: {
      type: "object",
      additionalProperties: false,
      properties: { limit: integerText(1000), cursor: str },
    },
    success: {
      status: 200,
      answer: {
        type: "object",
        additionalProperties: false,
        required: ["object", "data", "has_more", "next_cursor"],
        properties: {
          object: { const: "list" },
          data: { type: "array", items: RESULT },
          has_more: { type: "boolean" },
          next_cursor: nullable(str),
        },
      },
    },
    // unverified: the error statuses (no SDK function for this newer page was available); 409
    // for a batch not yet finished is the emulator's decision.
    errors: [400, 401, 404, 409, 410, 429, 500, 502],
  },
  {
    name: "cancelBatch",
    method: "POST",
    path: /^\/batches\/[^/]+\/cancel$/,
    reference: `${REF}/cancel-a-batch`,
    // "The response is the batch in its current status": still running, so no results.
    success: { status: 200, answer: batchObject(nullable({ type: "array", items: RESULT })) },
    // 403: cancellation is not enabled for the organization; 409: the batch has a final status.
    // unverified: 401, 404, 429 and the 5xx (the page names 403 and 409; the others are the
    // statuses every sibling operation documents).
    errors: [401, 403, 404, 409, 429, 500, 502],
    rules: [{
      direction: "answer",
      reference: `${REF}/cancel-a-batch`,
      check: (e) =>
        TERMINAL.includes(objectOf(e.answer).status as string)
          ? "a cancel answers 409 once the batch has a final status, not the batch"
          : null,
    }],
  },
  {
    name: "deleteBatch",
    method: "DELETE",
    path: /^\/batches\/[^/]+$/,
    reference: `${REF}/delete-a-batch`,
    success: {
      status: 200,
      answer: {
        type: "object",
        additionalProperties: false,
        required: ["id", "object", "deletion"],
        properties: {
          id: str,
          object: { const: "batch" },
          deletion: {
            type: "object",
            additionalProperties: false,
            required: ["openrouter"],
            properties: {
              openrouter: { const: "deleted" },
              upstream: {
                type: "object",
                required: ["provider", "status"],
                properties: { provider: str, status: str },
              },
            },
          },
        },
      },
    },
    errors: [401, 404, 409, 429, 500, 502],
  },
];

/** One place where recorded traffic departs from the contract. */
export interface ContractViolation {
  /** The log entry's `seq`. */
  seq: number;
  /** `METHOD /path` as recorded. */
  request: string;
  /** The operation matched (empty when none). */
  operation: string;
  direction: "request" | "answer";
  message: string;
  /** Where the broken fact is published. */
  reference: string;
}

/** Options of {@link checkOpenRouterBatchTraffic}. */
export interface TrafficCheckOptions {
  /**
   * API bases the batch paths live under (default: the reference's `/api/v1` and the quickstart's
   * `/api/beta`). Entries under none of them, and other paths than `/batches…`, are not checked.
   */
  bases?: readonly string[];
}

let ajv: Ajv2020 | undefined;
const compiled = new Map<Schema, ValidateFunction>();

function validate(schema: Schema, value: unknown): string[] {
  ajv ??= new Ajv2020({ allErrors: true, strictRequired: false });
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  if (fn(value)) return [];
  return (fn.errors ?? []).map((e) =>
    `${e.instancePath || "(root)"} ${e.message ?? e.keyword}${
      e.keyword === "additionalProperties"
        ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
        : ""
    }`
  );
}

/**
 * Compares recorded batch traffic (an emulator's `log` or `log.entries`, or entries recorded
 * elsewhere in the same shape) with {@link OPENROUTER_BATCH_CONTRACT}: every request to a batch
 * path must be a documented operation with a valid query and body; every delivered answer must
 * have a documented status and the documented shape (an undelivered one, status 0, is skipped).
 * Returns the violations, none when the traffic conforms.
 */
export function checkOpenRouterBatchTraffic(
  log: readonly LoggedRequest[] | RequestLog,
  options: TrafficCheckOptions = {},
): ContractViolation[] {
  const entries = Array.isArray(log) ? log : (log as RequestLog).entries;
  const bases = options.bases ?? ["/api/v1", "/api/beta"];
  const out: ContractViolation[] = [];
  for (const e of entries) {
    const base = bases.find((b) => e.path.startsWith(`${b}/batches`));
    if (base === undefined) continue;
    const rel = e.path.slice(base.length);
    const request = `${e.method} ${e.path}`;
    const op = OPENROUTER_BATCH_CONTRACT.find((o) => o.method === e.method && o.path.test(rel));
    const report = (
      direction: ContractViolation["direction"],
      message: string,
      reference = op?.reference ?? REF,
    ) =>
      out.push({ seq: e.seq, request, operation: op?.name ?? "", direction, message, reference });
    if (!op) {
      report("request", "no such operation in the API reference's Batch section");
      continue;
    }
    if (op.query) { for (const m of validate(op.query, e.query)) report("request", `query ${m}`); }
    if (op.request) {
      for (const m of validate(op.request, e.body)) report("request", `body ${m}`);
    } else if (e.body !== undefined) report("request", "this operation takes no body");
    const answered = e.status !== 0;
    for (const rule of op.rules ?? []) {
      if (rule.direction === "answer" && (!answered || e.status !== op.success.status)) continue;
      const wrong = rule.check(e);
      if (wrong) report(rule.direction, wrong, rule.reference);
    }
    if (!answered) continue;
    if (e.status === op.success.status) {
      for (const m of validate(op.success.answer, e.answer)) report("answer", m);
    } else if (op.errors.includes(e.status) || e.status >= 500) {
      // Any 5xx may come from the infrastructure in front of the API; a JSON one has the shape.
      if (e.answer !== undefined || e.status < 500) {
        for (const m of validate(ERROR, e.answer)) report("answer", `error body ${m}`);
      }
    } else {
      report(
        "answer",
        `status ${e.status} is not among the documented ones (${op.success.status}, ${
          op.errors.join(", ")
        })`,
      );
    }
  }
  return out;
}
