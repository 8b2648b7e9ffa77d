/**
 * The Anthropic emulator: Messages, token counting and Message Batches, as `@anthropic-ai/sdk`
 * (1.x, and 0.x on the wire) talks to them.
 *
 * - Auth: `x-api-key: <key>` (0.x, curl) or `Authorization: Bearer <key>` (1.x); anything else is
 *   401 `authentication_error`. Every request also needs an `anthropic-version` the emulator knows
 *   (2023-06-01 or 2026-10-21), else 400; the version decides whether `temperature`, `top_p` and
 *   `top_k` are allowed.
 * - Errors: `{"type":"error","error":{"type","message"},"request_id":"req_…"}`, the type following
 *   the status (shared.ts), and the same id in the `request-id` header.
 * - Structured output: `output_config.format.schema` must be a schema structured outputs take
 *   (anthropic/schema.ts): an object without `additionalProperties: false` is refused with the
 *   API's 400 `For 'object' type, 'additionalProperties' must be explicitly set to false`, as are
 *   `minItems` other than 0 or 1, unsupported keywords and formats, recursion; for messages,
 *   count_tokens and (as errored results) batch requests alike.
 * - Thinking: `thinking: {type: "enabled", budget_tokens}` (≥ 1024, < `max_tokens`) or
 *   `{type: "adaptive"}` puts a signed `thinking` block before the text, its tokens counted in
 *   `output_tokens` and `output_tokens_details.thinking_tokens` and against `max_tokens`
 *   (anthropic/messages.ts).
 * - Answers are typed against SDK 1.14's own types (`satisfies Message`, `MessageBatch`, …), so
 *   the compiler names a field the SDK requires and the emulator lacks.
 * - Limits (`EmulatorOptions.limits`): `maxRequests` (100,000 per batch), `maxBytes` (256 MB per
 *   batch create), `maxMessageBytes` (32 MB per Messages / count_tokens request), `maxOutputTokens`
 *   (128,000), and the knob `validateParamsAtCreate` (1: refuse invalid batch params with a 400 at
 *   create instead of reporting them as errored results, the documented behaviour).
 * @module
 */
import type {
  EmulatorContext,
  EmulatorRequest,
  ProviderEmulator,
  Reply,
  Route,
} from "../server.ts";
import { HttpError } from "../server.ts";
import { MessageBatches } from "./anthropic/batches.ts";
import { countMessageTokens, createMessage } from "./anthropic/messages.ts";
import {
  errorEnvelope,
  errorType,
  invalid,
  isObject,
  makeId,
  VERSIONS,
} from "./anthropic/shared.ts";
import { promptOf } from "./anthropic/validate.ts";

const BATCH = "/v1/messages/batches/(?<id>[^/]+)";

/** Creates the Anthropic provider over the shared emulator context. */
export function createAnthropic(ctx: EmulatorContext): ProviderEmulator {
  const batches = new MessageBatches(ctx);
  const route = (method: string, path: string, handle: (req: EmulatorRequest) => Reply): Route => ({
    method,
    path: new RegExp(`^${path}$`),
    handle,
  });
  const routes: Route[] = [
    { ...route("POST", "/v1/messages", (req) => createMessage(ctx, req)), answers: true },
    route("POST", "/v1/messages/count_tokens", (req) => countMessageTokens(ctx, req)),
    route("POST", "/v1/messages/batches", (req) => batches.create(req)),
    route("GET", "/v1/messages/batches", (req) => batches.list(req.query)),
    route("GET", BATCH, (req) => batches.retrieve(req.params.id)),
    route("POST", `${BATCH}/cancel`, (req) => batches.cancel(req.params.id)),
    route("DELETE", BATCH, (req) => batches.remove(req.params.id)),
    route("GET", `${BATCH}/results`, (req) => batches.results(req.params.id)),
  ];
  const requestId = () => makeId("req", ctx.next("request"));

  return {
    routes,

    error(status, message, code, extra): Reply {
      // The error's own id goes in both the body and the header, so `err.requestID` matches it.
      const id = requestId();
      const body = errorEnvelope(errorType(status, code), message, id);
      // `details` (e.g. `{ error_code: "enforced_spend_limit_reached" }`) selects the SDK's error subclass.
      if (extra?.details !== undefined) Object.assign(body.error, { details: extra.details });
      return { status, json: body, headers: { "request-id": id } };
    },

    authenticate(req) {
      const key = ctx.options.apiKey;
      const apiKey = req.headers["x-api-key"];
      const bearer = /^Bearer (.*)$/i.exec(req.headers["authorization"] ?? "")?.[1];
      if (apiKey === undefined && bearer === undefined) {
        return new HttpError(401, "x-api-key header is required", "authentication_error");
      }
      if (apiKey !== key && bearer !== key) {
        return new HttpError(401, "invalid x-api-key", "authentication_error");
      }
      const version = req.headers["anthropic-version"];
      if (!version) return invalid("anthropic-version: header is required");
      if (!VERSIONS.includes(version)) {
        return invalid(`anthropic-version: "${version}" is not a valid version`);
      }
      return null;
    },

    prompts(req) {
      if (req.method !== "POST" || !req.raw.length || !req.path.startsWith("/v1/messages")) {
        return [];
      }
      const body = req.json<unknown>();
      if (!isObject(body)) return [];
      if (req.path === "/v1/messages/batches") {
        const requests = Array.isArray(body.requests) ? body.requests : [];
        return requests.flatMap((
          r: unknown,
        ) => (isObject(r) && isObject(r.params) ? promptOf(r.params).inputs : []));
      }
      return promptOf(body).inputs;
    },

    headers() {
      return { "request-id": requestId() };
    },
  };
}
