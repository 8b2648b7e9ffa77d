/**
 * The Gemini Developer API (generativelanguage.googleapis.com) as `@google/genai` 2.x/3.x speaks
 * to it, under `/v1`, `/v1beta` and `/v1alpha` alike: `generateContent`, `countTokens`, batches
 * (inline or from an uploaded file) as long-running operations, and the Files API with Google's
 * resumable upload protocol. The parts live in `./gemini/`.
 *
 * Credentials: `x-goog-api-key: <key>` or `?key=<key>`. A wrong key is a 400 INVALID_ARGUMENT
 * with `API_KEY_INVALID` details, no key a 403 PERMISSION_DENIED, an OAuth bearer token a 401
 * UNAUTHENTICATED: as the real API answers. Upload chunks are authorised by their upload id.
 *
 * Limits (`EmulatorOptions.limits`): `maxInlineBytes` (20 MiB, a batch create body),
 * `maxFileBytes` (2 GiB), `batchExpiryMs` (48 h), `retryDelaySeconds` (the RetryInfo a 429
 * carries, 1), `thinkingTokens` (what a thinking model's default thinking spends, 2; see
 * gemini/thinking.ts). Knobs: `omitUploadUrl`, `omitUploadStatus` (see gemini/files.ts).
 * @module
 */
import type {
  EmulatorContext,
  EmulatorRequest,
  ProviderEmulator,
  Reply,
  Route,
} from "../server.ts";
import { batchRoutes } from "./gemini/batches.ts";
import { jsonBody, KNOWN_MODELS, VERSION } from "./gemini/common.ts";
import {
  apiKeyInvalid,
  badBearer,
  errorReply,
  invalidArgument,
  unknownModel,
  unregisteredCaller,
} from "./gemini/errors.ts";
import { fileRoutes, FileStore, isUploadChunk } from "./gemini/files.ts";
import { batchPrompts, linePrompts } from "./gemini/inputs.ts";
import { countTokensResponse, generateResponse, requestTexts } from "./gemini/generate.ts";
import { COUNT_TOKENS_REQUEST, GENERATE_REQUEST } from "./gemini/schema.ts";
import { parse, parseOrThrow, problemMessage, semanticProblems } from "./gemini/validate.ts";

/** Creates the Gemini emulator over the shared server context. */
export function createGemini(ctx: EmulatorContext): ProviderEmulator {
  const files = new FileStore(ctx);

  const generate = (req: EmulatorRequest): Reply => {
    const { model, ver } = req.params;
    if (!ctx.acceptsModel(model, KNOWN_MODELS)) throw unknownModel(model, ver, "generateContent");
    const body = parseOrThrow(jsonBody(req), GENERATE_REQUEST, ver);
    const problems = semanticProblems(body, model);
    if (problems.length) throw invalidArgument(problemMessage(problems));
    const thinking = ctx.limit("thinkingTokens", 2);
    return {
      json: generateResponse(model, body, ctx.next("gemini.response"), req.replyText, { thinking }),
    };
  };

  const count = (req: EmulatorRequest): Reply => {
    const { model, ver } = req.params;
    if (!ctx.acceptsModel(model, KNOWN_MODELS)) throw unknownModel(model, ver, "countTokens");
    const body = parseOrThrow(jsonBody(req), COUNT_TOKENS_REQUEST, ver);
    const inner = body.generateContentRequest as Record<string, unknown> | undefined;
    if (inner === undefined && !(Array.isArray(body.contents) && body.contents.length)) {
      throw invalidArgument("* CountTokensRequest.contents: contents is not specified\n");
    }
    const problems = semanticProblems(inner ?? { contents: body.contents }, model)
      .filter((p) => p.startsWith("* "))
      .map((p) => (inner ? p : p.replace("GenerateContentRequest", "CountTokensRequest")));
    if (problems.length) throw invalidArgument(problemMessage(problems));
    return { json: countTokensResponse(body) };
  };

  const routes: Route[] = [
    {
      method: "POST",
      path: new RegExp(`^/${VERSION}/models/(?<model>[^/:]+):generateContent$`),
      answers: true,
      handle: generate,
    },
    {
      method: "POST",
      path: new RegExp(`^/${VERSION}/models/(?<model>[^/:]+):countTokens$`),
      handle: count,
    },
    ...batchRoutes(ctx, files),
    ...fileRoutes(ctx, files),
  ];

  return {
    routes,
    error: (status, message, code, extra) =>
      errorReply(status, message, code, extra, ctx.limit("retryDelaySeconds", 1)),
    authenticate(req) {
      if (isUploadChunk(req)) return null;
      const key = req.headers["x-goog-api-key"] || req.query.get("key");
      if (!key) return req.headers.authorization ? badBearer() : unregisteredCaller();
      return key === ctx.options.apiKey ? null : apiKeyInvalid();
    },
    prompts(req) {
      if (/:generateContent$/.test(req.path)) {
        return requestTexts(parse(jsonBody(req), GENERATE_REQUEST, "v1").value);
      }
      if (/:countTokens$/.test(req.path)) {
        return requestTexts(parse(jsonBody(req), COUNT_TOKENS_REQUEST, "v1").value);
      }
      if (req.path.endsWith(":batchGenerateContent")) return batchPrompts(jsonBody(req), files);
      if (isUploadChunk(req)) return linePrompts(new TextDecoder().decode(req.raw));
      return [];
    },
  };
}
