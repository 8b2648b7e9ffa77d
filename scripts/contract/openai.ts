/**
 * OpenAI's traffic checked against its published OpenAPI definition (through {@link OpenApiChecks}),
 * with the batch-file lines the definition only describes in prose, the request members it
 * doesn't name (refused by the API), and the rules its types can't say (strict answer schemas,
 * reasoning models' refused parameters). Also serves OpenRouter and openai-compatible servers:
 * their Chat Completions share OpenAI's shape; OpenRouter documents extra request members and its
 * own error body (see {@link OpenAiValidatorOptions}).
 * @module
 */
import { formObject } from "../../emulator/providers/openai/contract.ts";
import { harnessAjv } from "./ajv.ts";
import type { OpenApiChecks } from "./openapi.ts";
import type { DecodedBody, Exchange } from "./proxy.ts";
import { openAiStrictProblems } from "./schema-rules.ts";
import {
  ajvProblems,
  exchangeName,
  linesOf,
  type Problem,
  under,
  type Validator,
  type Violation,
} from "./violations.ts";

const ajv = harnessAjv();

/**
 * One line of a batch input file. The 2026-08 definition has no component for it (earlier
 * versions had `BatchRequestInput`: custom_id, method `POST`, url, body); the API reference's
 * "request input object" says the same.
 */
const batchInputLine = ajv.compile({
  type: "object",
  required: ["custom_id", "method", "url", "body"],
  properties: {
    custom_id: { type: "string" },
    method: { const: "POST" },
    url: { type: "string" },
    body: { type: "object" },
  },
  additionalProperties: false,
});

/** One line of a batch output or error file (earlier definitions' `BatchRequestOutput`). */
const batchOutputLine = ajv.compile({
  type: "object",
  required: ["id", "custom_id", "response", "error"],
  properties: {
    id: { type: "string" },
    custom_id: { type: "string" },
    response: {
      type: ["object", "null"],
      required: ["status_code", "request_id", "body"],
      properties: {
        status_code: { type: "integer" },
        request_id: { type: "string" },
        body: { type: "object" },
      },
    },
    error: {
      type: ["object", "null"],
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" } },
    },
  },
});

/** Options of {@link openAiValidator}. */
export interface OpenAiValidatorOptions {
  /** The path the API lives under on this server: `/v1` (OpenAI, most compatible servers), `/api/v1` (OpenRouter). */
  readonly basePath: string;
  /**
   * Refuse top-level request members the definition doesn't name, as OpenAI does (400
   * "Unrecognized request argument supplied: …"). Off for OpenRouter, which documents its own
   * extra fields (provider, models, route, transforms, top_k, …).
   */
  readonly closedRequests: boolean;
  /** Whose error shape errors have: OpenAI's `ErrorResponse`, or OpenRouter's documented one. */
  readonly errors?: "openai" | "openrouter";
}

/**
 * OpenRouter's error body, as its "Errors and Debugging" page documents it:
 * `{ error: { code: number; message: string; metadata?: Record<string, unknown> } }`, with the
 * HTTP status equal to `error.code`.
 */
const openRouterError = ajv.compile({
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "integer" },
        message: { type: "string" },
        metadata: { type: "object" },
      },
    },
  },
});

function openRouterErrorProblems(status: number, body: unknown): Problem[] {
  if (!openRouterError(body)) return ajvProblems(openRouterError.errors);
  const code = (body as { error: { code: number } }).error.code;
  return code === status
    ? []
    : [{ path: "/error/code", message: `is ${code}, the HTTP status ${status}` }];
}

type Body = {
  response_format?: { type?: string; json_schema?: { strict?: boolean; schema?: unknown } };
  text?: { format?: { type?: string; strict?: boolean; schema?: unknown } };
};

/** A strict answer schema's problems, where the body carries one (Chat Completions, or the Responses token count). */
function strictSchemaProblems(body: unknown): Problem[] {
  const b = (body ?? {}) as Body;
  const chat = b.response_format;
  if (chat?.type === "json_schema" && chat.json_schema?.strict === true) {
    return under(
      "/response_format/json_schema/schema",
      openAiStrictProblems(chat.json_schema.schema),
    );
  }
  const responses = b.text?.format;
  if (responses?.type === "json_schema" && responses.strict === true) {
    return under("/text/format/schema", openAiStrictProblems(responses.schema));
  }
  return [];
}

/**
 * Sampling parameters OpenAI's reasoning models refuse. `stop`: the definition's
 * `StopConfiguration` says "Not supported with latest reasoning models `o3` and `o4-mini`".
 */
function reasoningProblems(body: unknown): Problem[] {
  const b = (body ?? {}) as Record<string, unknown>;
  const model = typeof b.model === "string" ? b.model : "";
  const out: Problem[] = [];
  if (/^(o3|o4-mini)([-.]|$)/.test(model) && b.stop !== undefined && b.stop !== null) {
    out.push({
      path: "/stop",
      message: `${model} does not support stop (the definition's StopConfiguration)`,
    });
  }
  // unverified: the refusal of these by every o-series and gpt-5 model comes from OpenAI's reasoning
  // guide as quoted in issue 10, not from the definition, which documents them without the restriction.
  if (/^(o\d+|gpt-5(\.\d+)?)([-.]|$)/.test(model) && !model.includes("-chat")) {
    for (
      const name of [
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
      ]
    ) {
      if (b[name] !== undefined && b[name] !== null) {
        out.push({
          path: `/${name}`,
          message: `${model} is a reasoning model and refuses ${name}`,
        });
      }
    }
  }
  return out;
}

const bodyValue = (
  body: DecodedBody,
): unknown => (body.kind === "json" ? body.value : body.kind === "empty" ? undefined : body);

/** A validator of OpenAI-shaped traffic against the published definition. */
export function openAiValidator(checks: OpenApiChecks, options: OpenAiValidatorOptions): Validator {
  const chatPath = "/chat/completions";
  const lineBody = (url: unknown) =>
    typeof url === "string" && url.startsWith("/v1/") ? url.slice(3) : chatPath;

  const request = (x: Exchange, path: string): Problem[] => {
    const body = x.request.body;
    if (body.kind === "multipart") {
      // The definition's multipart schema, over the fields as the emulator reads a form.
      const form = new FormData();
      for (const part of body.parts) {
        if (part.body.kind === "text" && part.filename === undefined) {
          form.append(part.name, part.body.text);
        } else form.append(part.name, new Blob([]), part.filename ?? part.name);
      }
      const fields = formObject(form);
      const out = checks.request(x.method, path, fields) ?? [];
      const file = body.parts.find((p) => p.name === "file");
      const purpose = fields.purpose;
      if (file && purpose === "batch") {
        out.push(...under(
          "/file/",
          linesOf(file.body, (line) => {
            if (!batchInputLine(line)) return ajvProblems(batchInputLine.errors);
            const l = line as { url: string; body: unknown };
            const spec = checks.request("POST", lineBody(l.url), l.body) ??
              [{ path: "", message: `no operation serves ${l.url}` }];
            return under("/body", [
              ...spec,
              ...strictSchemaProblems(l.body),
              ...reasoningProblems(l.body),
            ]);
          }),
        ));
      }
      return out;
    }
    if (body.kind !== "json" && body.kind !== "empty") {
      return [{ path: "", message: `expected a JSON body, got ${body.kind}` }];
    }
    const value = bodyValue(body);
    const members = options.closedRequests && value && typeof value === "object"
      ? checks.requestMembers?.(x.method, path)
      : undefined;
    const unknown = members ? Object.keys(value as object).filter((k) => !members.has(k)) : [];
    const unrecognized = unknown.map((k) => ({
      path: `/${k}`,
      message: `Unrecognized request argument supplied: ${k}`,
    }));
    const rules = path === chatPath
      ? [...strictSchemaProblems(value), ...reasoningProblems(value)]
      : strictSchemaProblems(value);
    return [...checks.request(x.method, path, value) ?? [], ...unrecognized, ...rules];
  };

  const response = (x: Exchange, path: string): Problem[] => {
    const { status, body } = x.response;
    if (status === 200 && x.method === "GET" && /^\/files\/[^/]+\/content$/.test(path)) {
      // A batch result file: the definition says only "string"; each line wraps a chat completion.
      if (body.kind === "empty") return [];
      return linesOf(body, (line) => {
        if (!batchOutputLine(line)) return ajvProblems(batchOutputLine.errors);
        const r = (line as { response: { status_code: number; body: unknown } | null }).response;
        return r
          ? under("/response/body", checks.response("POST", chatPath, r.status_code, r.body) ?? [])
          : [];
      });
    }
    if (body.kind !== "json") {
      return status === 204
        ? []
        : [{ path: "", message: `expected a JSON answer, got ${body.kind}` }];
    }
    if (status >= 400 && options.errors === "openrouter") {
      return openRouterErrorProblems(status, body.value);
    }
    return checks.response(x.method, path, status, body.value) ?? [];
  };

  return (x) => {
    const name = exchangeName(x);
    if (!x.path.startsWith(options.basePath + "/")) {
      return [{
        exchange: name,
        direction: "request",
        path: "",
        message: `outside the API's base path ${options.basePath}`,
      }];
    }
    const path = x.path.slice(options.basePath.length);
    if (!checks.serves(x.method, path)) {
      return [{
        exchange: name,
        direction: "request",
        path: "",
        message: "no operation of the published definition serves this method and path",
      }];
    }
    const out: Violation[] = [];
    // The definition's security scheme: a bearer key on every request.
    if (!x.request.headers.authorization) {
      out.push({
        exchange: name,
        direction: "request",
        path: "header authorization",
        message: "missing",
      });
    }
    for (const p of request(x, path)) out.push({ exchange: name, direction: "request", ...p });
    for (const p of response(x, path)) out.push({ exchange: name, direction: "response", ...p });
    return out;
  };
}
