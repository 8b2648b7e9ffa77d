/**
 * Gemini's traffic checked against {@link GEMINI_SCHEMAS} (written from the published protos),
 * including the resumable upload protocol's headers as `@google/genai` speaks it: a start
 * (`x-goog-upload-protocol: resumable`, `x-goog-upload-command: start`, the declared length and
 * type) answered with `x-goog-upload-url`, then `upload, finalize` at an offset, answered `final`
 * with the file.
 * @module
 */
import { definitionChecks } from "./ajv.ts";
import { GEMINI_SCHEMAS } from "./gemini-schemas.ts";
import type { DecodedBody, Exchange } from "./proxy.ts";
import {
  jsonOf,
  linesOf,
  type Problem,
  type RouteRule,
  routeValidator,
  type Validator,
} from "./violations.ts";

const V = "/v1beta";
const MODEL = `${V}/models/[^/:]+`;
const BATCH = `${V}/batches/[^/:]+`;
const FILE = `[^/:]+`;

/** A validator of Gemini (Generative Language API v1beta) traffic. */
export function geminiValidator(): Validator {
  const check = definitionChecks(GEMINI_SCHEMAS, "https://loom.invalid/gemini-v1beta");
  const json = (name: string) => (body: DecodedBody) => jsonOf(body, check(name));
  const answer = (name: string): RouteRule["response"] => (body, status) =>
    status >= 400 ? jsonOf(body, check("ErrorResponse")) : jsonOf(body, check(name));
  const header = (
    x: Exchange,
    side: "request" | "response",
    name: string,
    expected?: RegExp,
  ): Problem[] => {
    const value = x[side].headers[name];
    if (value === undefined) return [{ path: `header ${name}`, message: "missing" }];
    return expected && !expected.test(value)
      ? [{ path: `header ${name}`, message: `${JSON.stringify(value)} does not match ${expected}` }]
      : [];
  };
  const isStart = (x: Exchange) => x.query.upload_id === undefined;

  const routes: RouteRule[] = [
    {
      method: "POST",
      path: new RegExp(`^${MODEL}:generateContent$`),
      request: json("GenerateContentBody"),
      response: answer("GenerateContentResponse"),
    },
    {
      method: "POST",
      path: new RegExp(`^${MODEL}:countTokens$`),
      request: json("CountTokensRequest"),
      response: answer("CountTokensResponse"),
    },
    {
      method: "POST",
      path: new RegExp(`^${MODEL}:batchGenerateContent$`),
      request: json("BatchGenerateContentRequest"),
      response: answer("Operation"),
    },
    {
      method: "GET",
      path: new RegExp(`^${V}/batches$`),
      response: answer("ListOperationsResponse"),
    },
    { method: "GET", path: new RegExp(`^${BATCH}$`), response: answer("Operation") },
    {
      method: "POST",
      path: new RegExp(`^${BATCH}:cancel$`),
      request: (b) => (b.kind === "empty" ? [] : jsonOf(b, check("Empty"))),
      response: answer("Empty"),
    },
    { method: "DELETE", path: new RegExp(`^${BATCH}$`), response: answer("Empty") },
    { method: "GET", path: new RegExp(`^${V}/files/${FILE}$`), response: answer("File") },
    { method: "DELETE", path: new RegExp(`^${V}/files/${FILE}$`), response: answer("Empty") },
    { method: "GET", path: new RegExp(`^${V}/files$`), response: answer("ListFilesResponse") },
    {
      // A batch's responses file, fetched as media.
      method: "GET",
      path: new RegExp(`^/download${V}/files/${FILE}:download$`),
      response: (
        body,
        status,
      ) => (status >= 400
        ? jsonOf(body, check("ErrorResponse"))
        : linesOf(body, check("BatchOutputLine"))),
    },
    {
      method: "POST",
      path: new RegExp(`^/upload${V}/files$`),
      request: (body, x) => {
        if (isStart(x)) {
          return [
            ...header(x, "request", "x-goog-upload-protocol", /^resumable$/i),
            ...header(x, "request", "x-goog-upload-command", /^start$/i),
            ...header(x, "request", "x-goog-upload-header-content-length", /^\d+$/),
            ...header(x, "request", "x-goog-upload-header-content-type"),
            ...(body.kind === "empty" ? [] : jsonOf(body, check("CreateFileRequest"))),
          ];
        }
        // The file's bytes: Loom uploads only batch input files.
        return [
          ...header(
            x,
            "request",
            "x-goog-upload-command",
            /^(upload|finalize|upload, ?finalize)$/i,
          ),
          ...header(x, "request", "x-goog-upload-offset", /^\d+$/),
          ...linesOf(body, check("BatchInputLine")),
        ];
      },
      response: (body, status, x) => {
        if (status >= 400) return jsonOf(body, check("ErrorResponse"));
        if (isStart(x)) {
          return [
            ...header(x, "response", "x-goog-upload-url"),
            ...header(x, "response", "x-goog-upload-status", /^active$/),
          ];
        }
        const finalized = /finalize/i.test(x.request.headers["x-goog-upload-command"] ?? "");
        if (!finalized) return header(x, "response", "x-goog-upload-status", /^active$/);
        return [
          ...header(x, "response", "x-goog-upload-status", /^final$/),
          ...jsonOf(body, check("CreateFileResponse")),
        ];
      },
    },
  ];
  // The key goes in `x-goog-api-key` or the `key` query parameter (the SDK sends the header).
  const keyed = (x: Exchange): Problem[] =>
    x.request.headers["x-goog-api-key"] || x.query.key
      ? []
      : [{ path: "header x-goog-api-key", message: "missing (nor a key query parameter)" }];
  return routeValidator(routes, keyed);
}
