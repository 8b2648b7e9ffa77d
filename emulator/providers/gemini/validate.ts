/**
 * Request validation the way the Gemini API does it, in two layers:
 *
 * 1. Parsing (proto3 JSON): unknown field names and values of the wrong type are rejected with
 *    `Invalid JSON payload received. Unknown name "x" at 'generation_config': Cannot find field.`
 *    or `Invalid value at 'generation_config.temperature' (TYPE_FLOAT), "hot"`, plus a
 *    `BadRequest` detail. Both spellings of a field (`maxOutputTokens`, `max_output_tokens`) are
 *    accepted, numbers may come as strings, and `null` means "not set", as in proto3 JSON.
 * 2. Semantics: `* GenerateContentRequest.contents: contents is not specified`, empty parts, bad
 *    roles, out-of-range generation settings.
 *
 * In a batch, a parse error rejects the whole create call (the body cannot be decoded), while a
 * semantic problem becomes that request's error entry in the output.
 * @module
 */
import { camel, isObject, outputTokenLimit, snake } from "./common.ts";
import { type FieldViolation, invalidArgument } from "./errors.ts";
import { type Kind, type Message, PART_DATA } from "./schema.ts";
import { thinkingProblems } from "./thinking.ts";

/** A parsed body: a copy with lowerCamel names and numbers as numbers, and what was wrong with it. */
export interface Parsed {
  value: Record<string, unknown>;
  violations: FieldViolation[];
}

/** Parses a body against a message type, as Google's JSON transcoder does. */
export function parse(
  body: Record<string, unknown>,
  type: Message,
  version: string,
  at = "",
): Parsed {
  const violations: FieldViolation[] = [];
  const value = parseMessage(body, type, at, version, violations);
  return { value, violations };
}

/** The message Google puts at the top of a parse error: every violation, one per line. */
export function violationMessage(violations: FieldViolation[]): string {
  return violations.map((v) => v.description).join("\n");
}

/** Parses a body, throwing the 400 Google answers when it does not fit the message type. */
export function parseOrThrow(
  body: Record<string, unknown>,
  type: Message,
  version: string,
): Record<string, unknown> {
  const { value, violations } = parse(body, type, version);
  if (violations.length) throw invalidArgument(violationMessage(violations), violations);
  return value;
}

function parseMessage(
  obj: Record<string, unknown>,
  type: Message,
  at: string,
  version: string,
  out: FieldViolation[],
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(obj)) {
    const name = key.startsWith("_") ? key : camel(key);
    const kind = type.fields[name];
    if (kind === undefined) {
      const where = at ? ` at '${at}'` : "";
      out.push({
        field: at || undefined,
        description:
          `Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.`,
      });
      continue;
    }
    if (raw === null) continue;
    const path = at ? `${at}.${snake(name)}` : snake(name);
    const parsed = parseValue(raw, kind, path, version, out);
    if (parsed !== undefined) result[name] = parsed;
  }
  return result;
}

function parseValue(
  raw: unknown,
  kind: Kind,
  path: string,
  version: string,
  out: FieldViolation[],
): unknown {
  if (typeof kind === "object" && "repeated" in kind) {
    if (!Array.isArray(raw)) return bad(raw, kind.repeated, path, version, out);
    return raw.map((item, i) => parseValue(item, kind.repeated, `${path}[${i}]`, version, out));
  }
  if (Array.isArray(raw) && kind !== "json") {
    const name = path.split(/[.[]/).at(-1) ?? path;
    const parent = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "";
    const where = parent ? ` at '${parent}'` : "";
    out.push({
      field: path,
      description:
        `Invalid JSON payload received. Unknown name "${name}"${where}: Proto field is not repeating, cannot start list.`,
    });
    return undefined;
  }
  switch (kind) {
    case "json":
      return raw;
    case "object":
      return isObject(raw) ? raw : bad(raw, kind, path, version, out);
    case "string":
      return typeof raw === "string" ? raw : bad(raw, kind, path, version, out);
    case "bool":
      return typeof raw === "boolean" ? raw : bad(raw, kind, path, version, out);
    case "float": {
      const n = typeof raw === "number"
        ? raw
        : typeof raw === "string" && raw.trim() !== ""
        ? Number(raw)
        : NaN;
      return Number.isNaN(n) && raw !== "NaN" ? bad(raw, kind, path, version, out) : n;
    }
    case "int": {
      const n = typeof raw === "number"
        ? raw
        : typeof raw === "string" && /^-?\d+$/.test(raw.trim())
        ? Number(raw)
        : NaN;
      return Number.isInteger(n) ? n : bad(raw, kind, path, version, out);
    }
    default:
      return isObject(raw)
        ? parseMessage(raw, kind, path, version, out)
        : bad(raw, kind, path, version, out);
  }
}

function bad(
  raw: unknown,
  kind: Kind,
  path: string,
  version: string,
  out: FieldViolation[],
): undefined {
  const label = kind === "float"
    ? "TYPE_FLOAT"
    : kind === "int"
    ? "TYPE_INT32"
    : kind === "bool"
    ? "TYPE_BOOL"
    : kind === "string"
    ? "TYPE_STRING"
    : typeof kind === "object" && "name" in kind
    ? `type.googleapis.com/google.ai.generativelanguage.${version}.${kind.name}`
    : "type.googleapis.com/google.protobuf.Struct";
  out.push({
    field: path,
    description: `Invalid value at '${path}' (${label}), ${JSON.stringify(raw)}`,
  });
  return undefined;
}

/**
 * What is wrong with a parsed generate request beyond its shape: each entry is one message line.
 * Lines starting with `* ` are Google's field-path style and are reported together; the others
 * (role, ranges) are reported on their own.
 */
export function semanticProblems(req: Record<string, unknown>, model: string): string[] {
  const out: string[] = [];
  const contents = (req.contents ?? []) as Array<Record<string, unknown>>;
  if (contents.length === 0) {
    out.push("* GenerateContentRequest.contents: contents is not specified");
  }
  let badRole = false;
  contents.forEach((content, i) => {
    const role = content.role;
    if (role !== undefined && role !== "" && role !== "user" && role !== "model") badRole = true;
    out.push(...partProblems(content, `GenerateContentRequest.contents[${i}]`));
  });
  const system = req.systemInstruction as Record<string, unknown> | undefined;
  if (system) out.push(...partProblems(system, "GenerateContentRequest.system_instruction"));
  if (badRole) out.push("Please use a valid role: user, model.");
  const config = (req.generationConfig ?? {}) as Record<string, unknown>;
  // Range messages follow the wording Google uses for generation settings [unverified for the
  // Developer API]; what matters to callers is the 400 INVALID_ARGUMENT.
  range(out, "temperature", config.temperature, 0, 2);
  range(out, "topP", config.topP, 0, 1);
  range(out, "candidateCount", config.candidateCount, 1, 8);
  range(out, "maxOutputTokens", config.maxOutputTokens, 1, outputTokenLimit(model));
  range(out, "presencePenalty", config.presencePenalty, -2, 2);
  range(out, "frequencyPenalty", config.frequencyPenalty, -2, 2);
  out.push(...thinkingProblems(model, config));
  const stops = config.stopSequences as string[] | undefined;
  if (stops && stops.length > 5) {
    out.push(
      "* GenerateContentRequest.generation_config.stop_sequences: Up to 5 stop sequences are allowed.",
    );
  }
  const mime = config.responseMimeType as string | undefined;
  if (
    mime !== undefined &&
    !["text/plain", "application/json", "text/x.enum", "application/xml", "application/yaml"]
      .includes(mime)
  ) {
    out.push(
      "* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are `text/plain`, " +
        "`application/json`, `application/xml`, `application/yaml` and `text/x.enum`.",
    );
  }
  return out;
}

function partProblems(content: Record<string, unknown>, at: string): string[] {
  const parts = (content.parts ?? []) as Array<Record<string, unknown>>;
  if (parts.length === 0) return [`* ${at}.parts: contents.parts must not be empty.`];
  const out: string[] = [];
  parts.forEach((part, j) => {
    if (!PART_DATA.some((name) => part[name] !== undefined)) {
      out.push(
        `* ${at}.parts[${j}].data: required oneof field 'data' must have one initialized field`,
      );
    }
  });
  return out;
}

function range(out: string[], name: string, value: unknown, lo: number, hi: number): void {
  if (typeof value !== "number" || (value >= lo && value <= hi)) return;
  out.push(
    `Unable to submit request because it has a ${name} value of ${value} but the supported range is ` +
      `from ${lo} (inclusive) to ${hi} (inclusive). Update the value and try again.`,
  );
}

/** The single message for a request's semantic problems, as the API words it. */
export function problemMessage(problems: string[]): string {
  const starred = problems.filter((p) => p.startsWith("* "));
  return starred.length ? `${starred.join("\n")}\n` : problems[0];
}
