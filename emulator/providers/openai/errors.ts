/**
 * OpenAI's error vocabulary: the `{"error":{message,type,param,code}}` body, and the wording the
 * real API uses when a parameter is missing, has the wrong type or is out of range, so clients
 * see the messages they would see in production.
 * @module
 */
import { HttpError, type Reply } from "../../server.ts";

/** Values of `error.type` (HttpError's `code` may carry one of these instead of a code). */
const TYPES = new Set(["invalid_request_error", "server_error", "api_error", "requests", "tokens"]);

/** The OpenAI error body for a status, with `type` and `code` as the real API sets them. */
export function errorReply(
  status: number,
  message: string,
  code?: string,
  extra?: Record<string, unknown>,
): Reply {
  let type: string;
  let errorCode: string | null = code ?? null;
  if (typeof extra?.type === "string") type = extra.type;
  else if (code === "insufficient_quota") type = "insufficient_quota";
  else if (code !== undefined && TYPES.has(code)) {
    type = code;
    errorCode = null;
  } else if (code === "not_found") {
    type = "invalid_request_error";
    errorCode = null;
  } else if (status === 429) {
    type = "requests";
    errorCode ??= "rate_limit_exceeded";
  } else if (status >= 500) type = "server_error";
  else type = "invalid_request_error";
  if (status === 401 && !code) errorCode = "invalid_api_key";
  const param = typeof extra?.param === "string" ? extra.param : null;
  return { status, json: { error: { message, type, param, code: errorCode } } };
}

/** A 400 `invalid_request_error` naming the parameter at fault. */
export function invalid(
  message: string,
  param: string | null,
  code: string | null = null,
  status = 400,
): HttpError {
  return new HttpError(status, message, code ?? "invalid_request_error", { param });
}

/** `Missing required parameter: 'x'.` */
export function missing(param: string): HttpError {
  return invalid(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
}

/** `Unrecognized request argument supplied: x` */
export function unrecognized(name: string): HttpError {
  return invalid(`Unrecognized request argument supplied: ${name}`, null);
}

/** How the real API names a JSON value's type in messages ("a string", "an integer", …). */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "string") return "a string";
  if (typeof value === "boolean") return "a boolean";
  return "an object";
}

/** `Invalid type for 'x': expected a string, but got an integer instead.` */
export function wrongType(param: string, expected: string, value: unknown): HttpError {
  return invalid(
    `Invalid type for '${param}': expected ${expected}, but got ${describeType(value)} instead.`,
    param,
    "invalid_type",
  );
}

/** `Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'.` */
export function badValue(param: string, value: unknown, supported: readonly string[]): HttpError {
  const quoted = supported.map((s) => `'${s}'`);
  const list = quoted.length <= 2
    ? quoted.join(" and ")
    : `${quoted.slice(0, -1).join(", ")}, and ${quoted.at(-1)}`;
  return invalid(
    `Invalid value: '${String(value)}'. Supported values are: ${list}.`,
    param,
    "invalid_value",
  );
}

/** Checks a number parameter: its type (`integer` or `decimal`) and its bounds. */
export function checkNumber(
  value: unknown,
  param: string,
  kind: "integer" | "decimal",
  min?: number,
  max?: number,
): number {
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (kind === "decimal" || Number.isInteger(value));
  if (!ok) throw wrongType(param, kind === "integer" ? "an integer" : "a decimal", value);
  const n = value as number;
  if (min !== undefined && n < min) {
    throw invalid(
      `Invalid '${param}': ${kind} below minimum value. Expected a value >= ${min}, but got ${n} instead.`,
      param,
      `${kind}_below_min_value`,
    );
  }
  if (max !== undefined && n > max) {
    throw invalid(
      `Invalid '${param}': ${kind} above maximum value. Expected a value <= ${max}, but got ${n} instead.`,
      param,
      `${kind}_above_max_value`,
    );
  }
  return n;
}

/** Checks a string parameter (type and maximum length). */
export function checkString(value: unknown, param: string, maxLength?: number): string {
  if (typeof value !== "string") throw wrongType(param, "a string", value);
  if (maxLength !== undefined && value.length > maxLength) {
    throw invalid(
      `Invalid '${param}': string too long. Expected a string with maximum length ${maxLength}, but got a string with length ${value.length} instead.`,
      param,
      "string_above_max_length",
    );
  }
  return value;
}

/** Checks a boolean parameter. */
export function checkBoolean(value: unknown, param: string): boolean {
  if (typeof value !== "boolean") throw wrongType(param, "a boolean", value);
  return value;
}

/** A plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks an object parameter. */
export function checkObject(value: unknown, param: string): Record<string, unknown> {
  if (!isObject(value)) throw wrongType(param, "an object", value);
  return value;
}

/** Checks an array parameter and its length bounds. */
export function checkArray(value: unknown, param: string, min?: number, max?: number): unknown[] {
  if (!Array.isArray(value)) throw wrongType(param, "an array", value);
  if (min !== undefined && value.length < min) {
    throw invalid(
      value.length === 0
        ? `Invalid '${param}': empty array. Expected an array with minimum length ${min}, but got an empty array instead.`
        : `Invalid '${param}': array too short. Expected an array with minimum length ${min}, but got an array with length ${value.length} instead.`,
      param,
      value.length === 0 ? "empty_array" : "array_below_min_length",
    );
  }
  if (max !== undefined && value.length > max) {
    throw invalid(
      `Invalid '${param}': array too long. Expected an array with maximum length ${max}, but got an array with length ${value.length} instead.`,
      param,
      "array_above_max_length",
    );
  }
  return value;
}

/** Checks `metadata`: at most 16 string pairs, keys ≤ 64 characters, values ≤ 512. */
export function checkMetadata(value: unknown, param = "metadata"): Record<string, string> | null {
  if (value === null) return null;
  const meta = checkObject(value, param);
  const keys = Object.keys(meta);
  if (keys.length > 16) {
    throw invalid(
      `Invalid '${param}': too many properties. Expected an object with at most 16 properties, but got an object with ${keys.length} properties instead.`,
      param,
      "object_above_max_properties",
    );
  }
  for (const key of keys) {
    if (key.length > 64) {
      throw invalid(
        `Invalid '${param}': property name too long. Expected a property name with maximum length 64, but got a property name with length ${key.length} instead.`,
        param,
        "object_property_name_above_max_length",
      );
    }
    checkString(meta[key], `${param}.${key}`, 512);
  }
  return meta as Record<string, string>;
}

/**
 * An API key as the real API echoes a wrong one: the ends kept, the middle starred, never the
 * whole key (`test-key` → `te***ey`).
 */
export function maskKey(key: string): string {
  if (key.length < 8) return "***";
  if (key.length < 20) return `${key.slice(0, 2)}***${key.slice(-2)}`;
  return `${key.slice(0, 8)}${"*".repeat(Math.min(key.length - 12, 40))}${key.slice(-4)}`;
}
