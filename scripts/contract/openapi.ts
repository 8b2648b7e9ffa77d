/**
 * What the harness needs from an OpenAPI definition ({@link OpenApiChecks}), served by the
 * emulator's own validator over OpenAI's published definition (`emulator/contract/`,
 * whose `spec.ts` finds the file and lists the spec's quirks): one validator in the tree, used by
 * the emulator to refuse requests and by the harness to check recorded traffic both ways.
 * @module
 */
import {
  type OpenApiValidator,
  openApiValidator,
  type Violation as ContractViolation,
} from "../../emulator/contract/openapi.ts";
import type { Problem } from "./violations.ts";

/** Request and answer checks of an OpenAPI definition, addressed by method and path. */
export interface OpenApiChecks {
  /** Whether an operation of the definition serves `method path` (path below the server URL). */
  serves(method: string, path: string): boolean;
  /**
   * Problems of a JSON request body of the operation serving `method path` (path below the
   * server URL, e.g. `/chat/completions`, `/batches/batch_1`); undefined when no operation serves it.
   */
  request(method: string, path: string, body: unknown): Problem[] | undefined;
  /** Problems of an answer of that operation with `status`; undefined when no operation serves it. */
  response(method: string, path: string, status: number, body: unknown): Problem[] | undefined;
  /** Problems of a value (an answer) against a component schema by name (e.g. `ErrorResponse`). */
  schema(name: string, value: unknown): Problem[];
  /**
   * Every top-level member the operation's request schema names (through `$ref`, `allOf`,
   * `anyOf`, `oneOf`): the definition leaves request objects open, and the real API refuses an
   * unknown argument ("Unrecognized request argument supplied"). Undefined when unknown.
   */
  requestMembers(method: string, path: string): ReadonlySet<string> | undefined;
}

type Json = Record<string, unknown>;

/** A violation as the harness prints it: the pointer, and the member Ajv names when it has one. */
function problems(found: readonly ContractViolation[]): Problem[] {
  return found.map((v) => {
    const member = v.keyword === "additionalProperties" && v.params.additionalProperty
      ? ` (${String(v.params.additionalProperty)})`
      : "";
    return { path: v.pointer, message: `${v.message}${member}` };
  });
}

/** The checks over a validator (default: the emulator's, on the definition `spec.ts` finds). */
export function openApiChecks(validator: OpenApiValidator = openApiValidator()): OpenApiChecks {
  const operation = (method: string, path: string) => {
    try {
      return validator.operation(`${method} ${path}`);
    } catch {
      return undefined;
    }
  };
  const members = new Map<string, ReadonlySet<string> | undefined>();
  return {
    serves: (method, path) => operation(method, path) !== undefined,
    request(method, path, body) {
      const op = operation(method, path);
      if (!op) return undefined;
      // An operation without a request body (a GET, say) must be sent none.
      if (!op.request) {
        return body === undefined || body === null || body === ""
          ? []
          : [{ path: "", message: "the definition gives this operation no request body" }];
      }
      return problems(validator.request(`${method} ${path}`, body));
    },
    response(method, path, status, body) {
      const op = operation(method, path);
      if (!op) return undefined;
      // A download (a file's content) has no JSON schema to check; its errors still do.
      if (!op.response && status < 400) return [];
      return problems(validator.response(`${method} ${path}`, body, status));
    },
    schema: (name, value) => problems(validator.schema(name, value, "answer")),
    requestMembers(method, path) {
      const request = operation(method, path)?.request;
      if (!request) return undefined;
      if (!members.has(request)) {
        const schemas =
          (validator.spec().requestDoc.components as { schemas: Record<string, Json> }).schemas;
        const names = new Set<string>();
        const collect = (node: unknown, seen: ReadonlySet<string>): void => {
          if (!node || typeof node !== "object") return;
          const n = node as Json;
          const ref = typeof n.$ref === "string"
            ? /^#\/components\/schemas\/(.+)$/.exec(n.$ref)?.[1]
            : undefined;
          if (ref !== undefined) {
            if (!seen.has(ref)) collect(schemas[ref], new Set([...seen, ref]));
            return;
          }
          for (const key of Object.keys((n.properties ?? {}) as Json)) names.add(key);
          for (const k of ["allOf", "anyOf", "oneOf"]) {
            if (Array.isArray(n[k])) {
              for (const s of n[k] as unknown[]) collect(s, seen);
            }
          }
        };
        collect(schemas[request], new Set([request]));
        members.set(request, names.size ? names : undefined);
      }
      return members.get(request);
    },
  };
}
