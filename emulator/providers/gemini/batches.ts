/**
 * Gemini batches: `models/{model}:batchGenerateContent` with inlined requests or an uploaded
 * JSONL file, answered as long-running Operations (`batches/{id}`), plus get, list, cancel and
 * delete.
 *
 * Lifecycle, one state per step of `ctx.progress` (steps elapse per poll, per clock span, at once,
 * or by hand): PENDING → RUNNING → SUCCEEDED. Terminal operations carry `done: true` and either
 * the output (in BOTH `metadata.output`, which the SDK reads, and `response`, which REST clients
 * read) or an `error` (a `google.rpc.Status` with a numeric rpc code).
 *
 * How each BatchScenario knob maps here:
 * - `end: "fail"`: PENDING → FAILED at the first step (input validation fails), with the
 *   Operation's `error` (a `google.rpc.Status`: {code 3 INVALID_ARGUMENT, message}; the batch
 *   resource itself has no error field). The SDK's BatchJob does not map it on the Gemini API, so
 *   SDK callers see only the state; REST clients (and Loom) read the reason here.
 * - `end: "expire"`: RUNNING → EXPIRED at the second step, with no output at all (`processed` is
 *   ignored: Gemini returns nothing from an expired batch).
 * - The clock: a batch still unfinished 48 h (limit `batchExpiryMs`) after creation is EXPIRED.
 * - `failPromptContains` / `onlyErrors`: those requests (or all) get error entries inside a
 *   SUCCEEDED batch (`{"error":{code,message,status}}`, counted in `failedRequestCount`).
 * - `malformedLines` / `blankLines`: a file batch's responses file gets that many truncated-JSON
 *   lines / empty lines in the middle (inline output has no file, so they do not apply).
 * - `fileInvisibleFor`: OpenAI only; ignored.
 * Results keep input order, as the real API documents.
 * @module
 */
import type {
  BatchScenario,
  EmulatorContext,
  EmulatorRequest,
  Reply,
  Route,
} from "../../server.ts";
import {
  jsonBody,
  KNOWN_MODELS,
  LIFETIME_MS,
  makeId,
  pageSize,
  pageToken,
  readPageToken,
  timestamp,
  VERSION,
} from "./common.ts";
import {
  fileNotFound,
  googleError,
  invalidArgument,
  requestError,
  RPC_CODES,
  unknownModel,
} from "./errors.ts";
import type { FileStore } from "./files.ts";
import { generateResponse, requestTexts } from "./generate.ts";
import { fileItems, inlineItems, type Item } from "./inputs.ts";
import { BATCH_REQUEST } from "./schema.ts";
import { parseOrThrow } from "./validate.ts";
import type {
  BatchJson,
  BatchOperationJson,
  BatchOutputJson,
  BatchStateJson,
  BatchStatsJson,
  InlinedResponseJson,
  ResponseLineJson,
  RpcStatusJson,
} from "./wire.ts";

const BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch";
const OUTPUT_TYPE =
  "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput";

/** How a batch ended: its terminal state, when, and its output or error. */
interface Outcome {
  state: BatchStateJson;
  at: number;
  output?: BatchOutputJson;
  error?: RpcStatusJson;
  succeeded: number;
  failed: number;
}

interface Batch {
  id: string;
  seq: number;
  version: string;
  model: string;
  displayName?: string;
  fileName?: string;
  items: Item[];
  scenario: BatchScenario;
  created: number;
  updated: number;
  /** The last state shown, to move `updateTime` when it changes. */
  shown: BatchStateJson;
  final?: Outcome;
}

/** The batch routes over a shared file store. Limits: `maxInlineBytes` (20 MB), `batchExpiryMs` (48 h). */
export function batchRoutes(ctx: EmulatorContext, files: FileStore): Route[] {
  const batches = new Map<string, Batch>();

  const outcome = (b: Batch, end: "complete" | "expire" | "fail", at: number): Outcome => {
    if (end === "fail") {
      // unverified: the wording of a real validation failure (the published definitions give only
      // the Status shape: numeric google.rpc.Code, message, optional details).
      return {
        state: "BATCH_STATE_FAILED",
        at,
        error: {
          code: RPC_CODES.INVALID_ARGUMENT,
          message: "Batch failed: the input could not be validated.",
        },
        succeeded: 0,
        failed: b.items.length,
      };
    }
    if (end === "expire") {
      return {
        state: "BATCH_STATE_EXPIRED",
        at,
        error: {
          code: RPC_CODES.DEADLINE_EXCEEDED,
          message: "Batch expired before it could be completed.",
        },
        succeeded: 0,
        failed: 0,
      };
    }
    const marker = b.scenario.failPromptContains;
    const entries = b.items.map((item): InlinedResponseJson => {
      if (item.error !== undefined) return { error: requestError("INVALID_ARGUMENT", item.error) };
      const texts = requestTexts(item.request ?? {});
      if (
        b.scenario.onlyErrors || (marker !== undefined && texts.some((t) => t.includes(marker)))
      ) {
        return { error: requestError("INVALID_ARGUMENT", "Request contains an invalid argument.") };
      }
      const reply = ctx.replyFor?.({
        path: `/${b.version}/models/${b.model}:generateContent`,
        prompts: texts,
        batch: `batches/${b.id}`,
      });
      return {
        response: generateResponse(
          b.model,
          item.request ?? {},
          ctx.next("gemini.response"),
          reply,
          {
            thinking: ctx.limit("thinkingTokens", 2),
          },
        ),
      };
    });
    const failed = entries.filter((e) => "error" in e).length;
    const done = {
      state: "BATCH_STATE_SUCCEEDED" as const,
      at,
      succeeded: entries.length - failed,
      failed,
    };
    if (!b.fileName) {
      const inlined = entries.map((entry, i) => {
        const metadata = b.items[i].metadata;
        return metadata === undefined ? entry : { ...entry, metadata };
      });
      return { ...done, output: { inlinedResponses: { inlinedResponses: inlined } } };
    }
    const lines = entries.map((e, i) =>
      JSON.stringify(
        (b.items[i].key !== undefined
          ? { key: b.items[i].key, ...e }
          : e) satisfies ResponseLineJson,
      )
    );
    corrupt(lines, b.scenario);
    const bytes = new TextEncoder().encode(lines.map((l) => `${l}\n`).join(""));
    const id = `batch-${makeId(4, b.seq, 32)}`;
    files.add({ mimeType: "application/jsonl", bytes, source: "GENERATED" }, id);
    return { ...done, output: { responsesFile: `files/${id}` } };
  };

  /** The state now, settling the outcome the first time a terminal state is reached. */
  const stateOf = (b: Batch): BatchStateJson => {
    if (b.final) return b.final.state;
    const now = ctx.clock.now();
    const steps = ctx.progress.steps(b.id);
    const expiresAt = b.created + ctx.limit("batchExpiryMs", LIFETIME_MS);
    const end = b.scenario.end ?? "complete";
    const needed = end === "fail" ? 1 : 2;
    const schedule = ctx.options.schedule;
    // When did the step that ends the batch happen? Known exactly on a clock schedule; otherwise
    // a step is an explicit act (a poll, a test's step()), so it counts as before expiry.
    const stepAt = (n: number) =>
      steps === Number.POSITIVE_INFINITY
        ? b.created
        : schedule?.advance === "clock"
        ? Math.min(now, b.created + n * schedule.stepMs)
        : Math.min(now, expiresAt);
    let state: BatchStateJson;
    if (steps >= needed && stepAt(needed) <= expiresAt) {
      b.final = outcome(b, end, stepAt(needed));
      state = b.final.state;
    } else if (now >= expiresAt) {
      b.final = outcome(b, "expire", expiresAt);
      state = b.final.state;
    } else state = steps >= 1 ? "BATCH_STATE_RUNNING" : "BATCH_STATE_PENDING";
    if (state !== b.shown) {
      b.updated = b.final ? b.final.at : stepAt(1);
      b.shown = state;
    }
    return state;
  };

  const stats = (b: Batch, state: BatchStateJson): BatchStatsJson => {
    const n = b.items.length;
    const counts: Record<string, number> = { requestCount: n };
    if (state === "BATCH_STATE_SUCCEEDED" || state === "BATCH_STATE_FAILED") {
      counts.successfulRequestCount = b.final!.succeeded;
      counts.failedRequestCount = b.final!.failed;
    } else counts.pendingRequestCount = n;
    // int64 fields are JSON strings, and proto3 leaves zeros out.
    return Object.fromEntries(
      Object.entries(counts).filter(([, v]) => v !== 0).map(([k, v]) => [k, String(v)]),
    );
  };

  /** The Operation for a batch; `created` renders the create reply, which is always PENDING. */
  const render = (b: Batch, created = false): BatchOperationJson => {
    const state = created ? "BATCH_STATE_PENDING" : stateOf(b);
    const final = created ? undefined : b.final;
    // Field order as the real API sends it: model, display name, input, output, times, stats,
    // state, name. The real API echoes a file input (seen in list answers); echoing inlined
    // requests back on every poll is not known to happen, so they are left out.
    const metadata: BatchJson = {
      "@type": BATCH_TYPE,
      model: `models/${b.model}`,
      ...(b.displayName !== undefined ? { displayName: b.displayName } : {}),
      ...(b.fileName ? { inputConfig: { fileName: b.fileName } } : {}),
      ...(final?.output ? { output: final.output } : {}),
      createTime: timestamp(b.created),
      updateTime: timestamp(b.updated),
      ...(final ? { endTime: timestamp(final.at) } : {}),
      batchStats: stats(b, state),
      state,
      name: `batches/${b.id}`,
    };
    const op: BatchOperationJson = { name: `batches/${b.id}`, metadata };
    if (final) {
      op.done = true; // left out while false, as proto3 JSON does
      if (final.output) op.response = { "@type": OUTPUT_TYPE, ...final.output };
      else op.error = final.error;
    }
    return op;
  };

  const find = (req: EmulatorRequest): Batch => {
    const b = batches.get(req.params.id);
    if (!b) throw googleError(404, `Batch batches/${req.params.id} not found.`, "NOT_FOUND");
    return b;
  };

  const create = (req: EmulatorRequest): Reply => {
    const { model, ver: version } = req.params;
    if (!ctx.acceptsModel(model, KNOWN_MODELS)) {
      throw unknownModel(model, version, "batchGenerateContent");
    }
    const limit = ctx.limit("maxInlineBytes", 20 * 1024 * 1024);
    if (req.raw.length > limit) {
      throw invalidArgument(`Request payload size exceeds the limit: ${limit} bytes.`);
    }
    const body = parseOrThrow(jsonBody(req), BATCH_REQUEST, version);
    const batch = (body.batch ?? {}) as Record<string, unknown>;
    const input = (batch.inputConfig ?? {}) as Record<string, unknown>;
    const inline = (input.requests as Record<string, unknown> | undefined)?.requests as
      | Array<Record<string, unknown>>
      | undefined;
    const fileName = input.fileName as string | undefined;
    if ((inline === undefined) === (fileName === undefined)) {
      throw invalidArgument(
        "* BatchGenerateContentRequest.batch.input_config: exactly one of file_name or requests must be set.\n",
      );
    }
    let items: Item[];
    if (fileName !== undefined) {
      const file = files.get(fileName.replace(/^files\//, ""));
      if (!file) throw fileNotFound(fileName.replace(/^files\//, ""));
      items = fileItems(new TextDecoder().decode(file.bytes), model, version);
    } else items = inlineItems(inline!, model);
    if (items.length === 0) {
      throw invalidArgument(
        "* BatchGenerateContentRequest.batch.input_config: the batch has no requests.\n",
      );
    }
    const seq = ctx.next("gemini.batch");
    const now = ctx.clock.now();
    const b: Batch = {
      id: makeId(1, seq, 36),
      seq,
      version,
      model,
      displayName: batch.displayName as string | undefined,
      fileName: fileName === undefined ? undefined : `files/${fileName.replace(/^files\//, "")}`,
      items,
      scenario: ctx.scenario(seq),
      created: now,
      updated: now,
      shown: "BATCH_STATE_PENDING",
    };
    batches.set(b.id, b);
    ctx.progress.track(b.id);
    // The real API answers a create with a pending job, whatever happens next.
    return { json: render(b, true) };
  };

  const list = (req: EmulatorRequest): Reply => {
    const size = pageSize(req.query.get("pageSize"), 10, 1000); // defaults [unverified]
    const token = req.query.get("pageToken");
    const listed = ctx.listing?.() ?? (() => true);
    let all = [...batches.values()].filter((b) => listed(`batches/${b.id}`)).sort((a, b) =>
      b.seq - a.seq
    );
    if (token) {
      const after = readPageToken("batches", token);
      all = all.filter((b) => b.seq < after);
    }
    const page = all.slice(0, size);
    const out: { operations?: BatchOperationJson[]; nextPageToken?: string } = {};
    if (page.length) out.operations = page.map((b) => render(b));
    if (all.length > size) out.nextPageToken = pageToken("batches", page.at(-1)!.seq);
    return { json: out };
  };

  const cancel = (req: EmulatorRequest): Reply => {
    const b = find(req);
    const state = stateOf(b);
    if (b.final) {
      // Whether the real API refuses or ignores this is unverified; refusing is the safer fake.
      throw googleError(
        400,
        `Batch batches/${b.id} is already in a terminal state (${state}) and cannot be cancelled.`,
        "FAILED_PRECONDITION",
      );
    }
    const now = ctx.clock.now();
    b.final = {
      state: "BATCH_STATE_CANCELLED",
      at: now,
      error: { code: RPC_CODES.CANCELLED, message: "CANCELLED" },
      succeeded: 0,
      failed: 0,
    };
    b.updated = now;
    b.shown = b.final.state;
    return { json: {} };
  };

  const remove = (req: EmulatorRequest): Reply => {
    batches.delete(find(req).id);
    return { json: {} };
  };

  return [
    {
      method: "POST",
      path: new RegExp(`^/${VERSION}/models/(?<model>[^/:]+):batchGenerateContent$`),
      handle: create,
    },
    { method: "GET", path: new RegExp(`^/${VERSION}/batches$`), handle: list },
    {
      method: "GET",
      path: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+)$`),
      handle: (req) => {
        const b = find(req);
        ctx.progress.poll(b.id);
        return { json: render(b) };
      },
    },
    {
      method: "POST",
      path: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+):cancel$`),
      handle: cancel,
    },
    { method: "DELETE", path: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+)$`), handle: remove },
    // The REST guide also shows a `:delete` custom method.
    {
      method: "POST",
      path: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+):delete$`),
      handle: remove,
    },
  ];
}

/** Inserts the scenario's malformed and blank lines into the middle of a responses file. */
function corrupt(lines: string[], scenario: BatchScenario): void {
  const middle = Math.ceil(lines.length / 2);
  for (let i = 0; i < (scenario.malformedLines ?? 0); i++) {
    lines.splice(middle, 0, `{"key":"malformed-${i + 1}","response":{"candidates":[`);
  }
  for (let i = 0; i < (scenario.blankLines ?? 0); i++) lines.splice(middle, 0, "");
}
