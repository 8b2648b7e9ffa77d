/**
 * The checks of OpenRouter's batch create (`POST /batches`) that answer before a batch exists: the
 * body's shape and field order, the endpoint, the model, the options, the size limits, and each
 * request's envelope (`custom_id`, `body`, `body.model`). The request bodies themselves are checked
 * later, while the batch is `validating` (./batches.ts). Sources as in ./batches.ts.
 * @module
 */
import { type EmulatorContext, type EmulatorRequest, HttpError } from "../../server.ts";
import { chatPrompts } from "../openai.ts";

/** The `endpoint` values the reference lists. */
export const BATCH_ENDPOINTS: readonly string[] = [
  "/v1/chat/completions",
  "/v1/responses",
  "/v1/messages",
  "/v1/embeddings",
];
/** The one endpoint the emulator can run (OpenRouter's emulator has only chat completions). */
const SERVED = "/v1/chat/completions";
/** Requests per batch (limit name `maxRequests`), from the Batch API guide's "Key facts". */
export const MAX_BATCH_REQUESTS = 5_000;
/** Bytes of the create body (limit name `maxBytes`): "200 MB per batch", read as MiB. */
export const MAX_BATCH_BYTES = 200 * 1024 * 1024;
/**
 * unverified: the 64-character cap on `custom_id` was observed live by the `openrouter-batch`
 * crate's authors (2026-08-30); the reference states no cap.
 */
const MAX_CUSTOM_ID = 64;
const BODY_FIELDS = [
  "endpoint",
  "model",
  "requests",
  "completion_window",
  "provider",
  "callback_url",
];

/** One request of a batch. */
export interface Item {
  customId: string;
  /** With the batch's model filled in when the request omitted it. */
  body: Record<string, unknown>;
}

/** A create body that passed the checks. */
export interface Submission {
  endpoint: string;
  model: string;
  /** `provider.only`, when given. */
  only: string[] | null;
  items: Item[];
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
export const invalid = (message: string) => new HttpError(400, message);

/** The prompt texts of a batch create body (every request's), for `promptContains` fault rules. */
export function batchPrompts(body: unknown): string[] {
  if (!isObject(body) || !Array.isArray(body.requests)) return [];
  return body.requests.flatMap((r) => (isObject(r) ? chatPrompts(r.body) : []));
}

/** Checks a create request; throws the {@link HttpError} the API answers it with. */
export function parseSubmit(
  ctx: EmulatorContext,
  req: EmulatorRequest,
  acceptsModel: (model: string) => boolean,
): Submission {
  const maxBytes = ctx.limit("maxBytes", MAX_BATCH_BYTES);
  // unverified: the status (413 is among the create's documented error statuses) and wording.
  if (req.raw.length > maxBytes) {
    throw new HttpError(413, `Batch body exceeds the maximum size of ${maxBytes} bytes`);
  }
  const body = req.json<unknown>();
  if (!isObject(body)) throw invalid("Request body must be a JSON object");
  const keys = Object.keys(body);
  // unverified: that an unknown top-level field is refused rather than ignored.
  for (const key of keys) {
    if (!BODY_FIELDS.includes(key)) throw invalid(`Unrecognized field in batch body: ${key}`);
  }
  for (const key of ["endpoint", "model", "requests"]) {
    if (body[key] === undefined) throw invalid(`Missing required field: ${key}`);
  }
  // Documented: the API stream-parses the body and answers 400 when `requests` comes first.
  const at = (k: string) => keys.indexOf(k);
  if (at("requests") < at("endpoint") || at("requests") < at("model")) {
    throw invalid("endpoint and model must appear before requests in the request body");
  }
  const endpoint = body.endpoint;
  if (typeof endpoint !== "string" || !BATCH_ENDPOINTS.includes(endpoint)) {
    throw invalid(
      `Invalid endpoint: ${JSON.stringify(endpoint)}; expected one of ${
        BATCH_ENDPOINTS.join(", ")
      }`,
    );
  }
  if (endpoint !== SERVED) {
    throw invalid(`The emulator runs batches for ${SERVED} only, not ${endpoint}`);
  }
  const model = body.model;
  if (typeof model !== "string" || !model) throw invalid("model must be a non-empty string");
  // unverified: the status and wording (the sync endpoint's 400 for an unknown model).
  if (!acceptsModel(model)) throw invalid(`${model} is not a valid model ID`);
  if (body.completion_window !== undefined && body.completion_window !== "24h") {
    throw invalid(
      `Invalid completion_window: ${
        JSON.stringify(body.completion_window)
      }; the only supported value is "24h"`,
    );
  }
  const only = checkProvider(body.provider);
  if (body.callback_url !== undefined && !/^https?:\/\/\S+$/.test(String(body.callback_url))) {
    throw invalid("callback_url must be an http(s) URL");
  }
  const items = checkRequests(ctx, body.requests, model);
  return { endpoint, model, only, items };
}

/** `provider`: documented "Only provider.only and provider.allow_fallbacks are supported". */
function checkProvider(provider: unknown): string[] | null {
  if (provider === undefined || provider === null) return null;
  if (!isObject(provider)) throw invalid("provider must be an object");
  for (const key of Object.keys(provider)) {
    if (key !== "only" && key !== "allow_fallbacks") {
      throw invalid(
        `Unsupported batch provider preference: provider.${key}; only provider.only and provider.allow_fallbacks are supported`,
      );
    }
  }
  if (provider.allow_fallbacks !== undefined && typeof provider.allow_fallbacks !== "boolean") {
    throw invalid("provider.allow_fallbacks must be a boolean");
  }
  if (provider.only === undefined) return null;
  if (!Array.isArray(provider.only) || !provider.only.every((p) => typeof p === "string")) {
    throw invalid("provider.only must be an array of provider names");
  }
  return provider.only as string[];
}

/** The `requests` array: each `{custom_id, body}`, ids unique, bodies on the batch's model. */
function checkRequests(ctx: EmulatorContext, requests: unknown, model: string): Item[] {
  if (!Array.isArray(requests)) throw invalid("requests must be an array");
  if (requests.length === 0) throw invalid("requests must contain at least one request");
  const max = ctx.limit("maxRequests", MAX_BATCH_REQUESTS);
  // unverified: the status (as for the byte limit) and wording.
  if (requests.length > max) {
    throw new HttpError(
      413,
      `A batch may contain at most ${max} requests; this one has ${requests.length}`,
    );
  }
  const seen = new Set<string>();
  return requests.map((r: unknown, i) => {
    const at = `requests[${i}]`;
    if (!isObject(r)) throw invalid(`${at} must be an object with custom_id and body`);
    for (const key of Object.keys(r)) {
      if (key !== "custom_id" && key !== "body") {
        throw invalid(`Unrecognized field in ${at}: ${key}`);
      }
    }
    const customId = r.custom_id;
    if (customId === undefined) throw invalid(`Missing required field: ${at}.custom_id`);
    if (typeof customId !== "string" || !customId) {
      throw invalid(`${at}.custom_id must be a non-empty string`);
    }
    if (customId.length > MAX_CUSTOM_ID) {
      throw invalid(`${at}.custom_id is longer than ${MAX_CUSTOM_ID} characters`);
    }
    if (seen.has(customId)) {
      throw invalid(
        `Duplicate custom_id "${customId}" at ${at}; each request needs a unique custom_id`,
      );
    }
    seen.add(customId);
    if (r.body === undefined) throw invalid(`Missing required field: ${at}.body`);
    if (!isObject(r.body)) throw invalid(`${at}.body must be a JSON object`);
    // Documented: a body may omit `model` to inherit the batch's; one that differs is rejected.
    if (r.body.model !== undefined && r.body.model !== model) {
      throw invalid(
        `${at}.body.model (${
          JSON.stringify(r.body.model)
        }) does not match the batch model (${model})`,
      );
    }
    return { customId, body: { ...r.body, model } };
  });
}
