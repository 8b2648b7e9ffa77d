/**
 * What the harness reports and how a provider's rules find it: a {@link Validator} turns one
 * recorded exchange into violations; {@link routeValidator} builds one from a table of the
 * endpoints a provider publishes. An exchange no route knows is itself a violation (Loom called
 * something the published definitions don't have).
 * @module
 */
import type { ErrorObject } from "ajv";
import type { DecodedBody, Exchange } from "./proxy.ts";

/** One place where recorded traffic breaks a published definition. */
export interface Violation {
  /** `#3 POST /v1/chat/completions`. */
  readonly exchange: string;
  /** `request`: Loom sent it; `response`: the server (the emulator) answered it. */
  readonly direction: "request" | "response";
  /** JSON Pointer into the body (JSONL lines and multipart parts get their own prefix). */
  readonly path: string;
  readonly message: string;
}

/** A problem a schema check finds in one value. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

/** Checks one value; no problems means it conforms. */
export type SchemaCheck = (value: unknown) => Problem[];

/** Turns one exchange into its violations. Pluggable: the harness runs whichever it is given. */
export type Validator = (exchange: Exchange) => Violation[];

/** One endpoint of a provider: how to check what goes in and what comes out. */
export interface RouteRule {
  readonly method: string;
  /** Matched against the whole recorded path. */
  readonly path: RegExp;
  /** Problems of the request body; absent means the endpoint takes no body (a body is then a violation). */
  readonly request?: (body: DecodedBody, exchange: Exchange) => Problem[];
  /** Problems of the response body for its status. */
  readonly response: (body: DecodedBody, status: number, exchange: Exchange) => Problem[];
}

/** Names an exchange the way violations print it. */
export function exchangeName(x: Exchange): string {
  return `#${x.seq} ${x.method} ${x.path}`;
}

/** A validator over a provider's endpoint table; `every` checks every exchange (headers, say). */
export function routeValidator(
  routes: readonly RouteRule[],
  every: (x: Exchange) => Problem[] = () => [],
): Validator {
  return (x) => {
    const name = exchangeName(x);
    const route = routes.find((r) => r.method === x.method && r.path.test(x.path));
    if (!route) {
      return [{
        exchange: name,
        direction: "request",
        path: "",
        message: "no published endpoint matches this method and path",
      }];
    }
    const out: Violation[] = every(x).map((p) => ({ exchange: name, direction: "request", ...p }));
    if (route.request) {
      for (const p of route.request(x.request.body, x)) {
        out.push({ exchange: name, direction: "request", ...p });
      }
    } else if (x.request.body.kind !== "empty") {
      out.push({
        exchange: name,
        direction: "request",
        path: "",
        message: "this endpoint takes no body",
      });
    }
    if (x.response.status === 0) {
      out.push({
        exchange: name,
        direction: "response",
        path: "",
        message: "no answer (connection failed)",
      });
    } else {for (const p of route.response(x.response.body, x.response.status, x)) {
        out.push({ exchange: name, direction: "response", ...p });
      }}
    return out;
  };
}

/** The JSON value of a body, or a problem saying it isn't JSON. */
export function jsonOf(body: DecodedBody, check: SchemaCheck): Problem[] {
  if (body.kind !== "json") {
    return [{ path: "", message: `expected a JSON body, got ${body.kind}` }];
  }
  return check(body.value);
}

/** Checks every line of a JSONL body with `check`, prefixing paths with the line number. */
export function linesOf(
  body: DecodedBody,
  check: (line: unknown, index: number) => Problem[],
): Problem[] {
  if (body.kind !== "jsonl" && body.kind !== "json") {
    return [{ path: "", message: `expected a JSONL file, got ${body.kind}` }];
  }
  const lines = body.kind === "jsonl" ? body.lines : [body.value];
  return lines.flatMap((line, i) =>
    check(line, i).map((p) => ({ path: `line ${i + 1}${p.path}`, message: p.message }))
  );
}

/** Prefixes a nested check's paths (e.g. a batch line's `body`). */
export function under(prefix: string, problems: Problem[]): Problem[] {
  return problems.map((p) => ({ path: `${prefix}${p.path}`, message: p.message }));
}

/**
 * Ajv's errors as problems, keeping only the deepest ones of each branch: a failed `anyOf`
 * otherwise reports every alternative at its own root, which buries the real mismatch.
 */
export function ajvProblems(errors: readonly ErrorObject[] | null | undefined): Problem[] {
  if (!errors?.length) return [];
  const deepest = errors.filter((e) =>
    !errors.some((o) => o !== e && o.instancePath.startsWith(e.instancePath + "/"))
  );
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const e of deepest) {
    const extra = e.keyword === "additionalProperties"
      ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
      : e.keyword === "enum"
      ? ` (${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)})`
      : e.keyword === "const"
      ? ` (${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)})`
      : "";
    const message = `${e.message ?? e.keyword}${extra}`;
    const key = `${e.instancePath}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path: e.instancePath, message });
  }
  return out;
}

/** Request headers that must be present (names in lower case), as problems. */
export function missingHeaders(x: Exchange, names: readonly string[]): Problem[] {
  return names.filter((n) => !x.request.headers[n]).map((n) => ({
    path: `header ${n}`,
    message: "missing",
  }));
}

/** Prints violations one per line: exchange, direction, JSON path, message. */
export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((v) =>
    `${v.exchange}  [${v.direction}]  ${v.path || "(root)"}: ${v.message}`
  ).join("\n");
}
