/**
 * The OpenAI emulator's contract check: request bodies validated against OpenAI's published
 * OpenAPI definition (`../../contract/`), a violation answered as the API's 400
 * `invalid_request_error` naming the parameter. The hand-written checks of each endpoint run
 * first (they carry the real API's exact messages); this catches what they do not look at.
 * @module
 */
import { type EmulatorOptions, HttpError } from "../../server.ts";
import { type OpenApiValidator, openApiValidator, type Violation } from "../../contract/openapi.ts";
import { describeType, isObject } from "./errors.ts";

/** Request schemas by batch line `url` (the endpoints the emulator batches). */
const LINE_OPERATIONS: Record<string, string> = {
  "/v1/chat/completions": "createChatCompletion",
  "/v1/responses": "createResponse",
};

/** Request schemas compiled when an emulator starts. */
const PREPARED = ["createChatCompletion", "createBatch", "createFile"];

/** The contract check of one emulator. */
export interface RequestContract {
  readonly validator: OpenApiValidator;
  /** Throws the API's 400 when `body` breaks the request schema of `operation` (an operationId). */
  check(operation: string, body: unknown): void;
  /** Checks a multipart upload's fields (`POST /v1/files`). */
  checkForm(operation: string, form: FormData): void;
  /**
   * Throws the API's 400 when a batch line's `body` breaks the request schema of the line's `url`.
   * A batch reports it per request, in its error file (a batch whose every request had a bad
   * parameter still ends `completed`, its lines in the error file: kaapi-backend#723).
   */
  line(url: string, body: unknown): void;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a decimal",
  boolean: "a boolean",
  object: "an object",
  array: "an array",
};

const quote = (values: unknown[]) => {
  const q = values.map((v) => `'${String(v)}'`);
  return q.length <= 2 ? q.join(" and ") : `${q.slice(0, -1).join(", ")}, and ${q.at(-1)}`;
};

/**
 * A violation in OpenAI's wording. The missing/type/enum/range messages are the ones the
 * hand-written checks use (observed API messages); the rest is
 * unverified: the real API's wording for other keywords (pattern, additionalProperties nested
 * below the top level, oneOf with no matching branch) is not published.
 */
export function describeViolation(
  all: Violation[],
): { message: string; code: string | null; param: string | null } {
  const v = all[0];
  const param = v.param || null;
  const p = v.params;
  const at = v.param || "body";
  switch (v.keyword) {
    case "required":
      return {
        message: `Missing required parameter: '${at}'.`,
        code: "missing_required_parameter",
        param,
      };
    case "type": {
      // Alternatives of an anyOf/oneOf fail at the same place: name every type they allow.
      const types = [
        ...new Set(
          all.filter((o) => o.pointer === v.pointer && o.keyword === "type")
            .flatMap((o) => [o.params.type].flat() as string[]).filter((t) => t !== "null"),
        ),
      ];
      const names = types.map((t) => TYPE_NAMES[t] ?? t);
      const expected = names.length > 1 ? `one of ${names.join(" or ")}` : names[0];
      return {
        message: `Invalid type for '${at}': expected ${expected}, but got ${
          describeType(v.value)
        } instead.`,
        code: "invalid_type",
        param,
      };
    }
    case "enum":
    case "const": {
      const allowed = (p.allowedValues as unknown[] | undefined) ?? [p.allowedValue];
      return {
        message: `Invalid value: '${String(v.value)}'. Supported values are: ${
          quote(allowed.filter((a) => a !== null))
        }.`,
        code: "invalid_value",
        param,
      };
    }
    case "additionalProperties":
      // As the hand-written check words it (errors.ts `unrecognized`): no param, no code.
      return { message: `Unrecognized request argument supplied: ${at}`, code: null, param: null };
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const kind = Number.isInteger(v.value) ? "integer" : "decimal";
      const below = v.keyword.toLowerCase().endsWith("minimum");
      const cmp = String(p.comparison);
      return {
        message: `Invalid '${at}': ${kind} ${
          below ? "below minimum" : "above maximum"
        } value. Expected a value ${cmp} ${p.limit}, but got ${v.value} instead.`,
        code: `${kind}_${below ? "below_min" : "above_max"}_value`,
        param,
      };
    }
    case "minItems":
    case "maxItems": {
      const n = Array.isArray(v.value) ? v.value.length : 0;
      if (v.keyword === "minItems" && n === 0) {
        return {
          message:
            `Invalid '${at}': empty array. Expected an array with minimum length ${p.limit}, but got an empty array instead.`,
          code: "empty_array",
          param,
        };
      }
      const short = v.keyword === "minItems";
      return {
        message: `Invalid '${at}': array too ${short ? "short" : "long"}. Expected an array with ${
          short ? "minimum" : "maximum"
        } length ${p.limit}, but got an array with length ${n} instead.`,
        code: short ? "array_below_min_length" : "array_above_max_length",
        param,
      };
    }
    case "minLength":
    case "maxLength": {
      const short = v.keyword === "minLength";
      return {
        message: `Invalid '${at}': string too ${short ? "short" : "long"}. Expected a string with ${
          short ? "minimum" : "maximum"
        } length ${p.limit}, but got a string with length ${String(v.value).length} instead.`,
        code: short ? "string_below_min_length" : "string_above_max_length",
        param,
      };
    }
    default:
      // unverified: wording for other keywords.
      return { message: `Invalid '${at}': ${v.message}.`, code: "invalid_value", param };
  }
}

/** Multipart fields as the JSON object the spec describes: `a[b]` nests, files become strings, numerals numbers. */
export function formObject(form: FormData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of form.entries()) {
    // The spec types file parts `string` with format `binary`.
    const v: unknown = typeof value === "string"
      ? (/^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value)
      : "<binary>";
    const path = name.replace(/\]/g, "").split("[");
    let node = out;
    path.slice(0, -1).forEach((key) => {
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as Record<string, unknown>;
    });
    node[path.at(-1)!] = v;
  }
  return out;
}

/**
 * The contract check an emulator's options ask for: `openaiSpec: false` turns it off; a path
 * names the spec; absent, the default place is used (and a missing file fails the start).
 */
export function openAIContract(options: EmulatorOptions): RequestContract | null {
  if (options.openaiSpec === false) return null;
  const validator = openApiValidator(options.openaiSpec);
  // Compiled at start (once per process): a first chat request must not pay ~0.5 s of compiling,
  // which a client with a tight timeout would see. The Responses and input-token schemas (large,
  // rarely used) compile on first use.
  validator.prepare(...PREPARED);
  const toError = (violations: Violation[]) => {
    const d = describeViolation(violations);
    return new HttpError(400, d.message, d.code ?? undefined, {
      param: d.param,
      type: "invalid_request_error",
    });
  };
  return {
    validator,
    check(operation, body) {
      const violations = validator.request(operation, body);
      if (violations.length) throw toError(violations);
    },
    checkForm(operation, form) {
      const violations = validator.request(operation, formObject(form));
      if (violations.length) throw toError(violations);
    },
    line(url, body) {
      const operation = LINE_OPERATIONS[url];
      if (operation) this.check(operation, body);
    },
  };
}
