/**
 * Small pieces every part of the Gemini emulator shares: the API versions it serves, the known
 * models, Google's timestamp and id formats, and reading a JSON body the way Google reports a
 * broken one.
 * @module
 */
import { hexId } from "../../answers.ts";
import type { EmulatorRequest } from "../../server.ts";
import { invalidArgument } from "./errors.ts";

/**
 * A route-pattern fragment for the API version. `@google/genai` 3.x defaults to `v1`, 2.x and the
 * REST docs use `v1beta`; the emulator serves all three alike (whether the real `v1` serves
 * batches and files is unverified, so plugins pin `v1beta`).
 */
export const VERSION = "(?<ver>v1|v1beta|v1alpha)";

/** Model ids the emulator accepts by default (`EmulatorOptions.models` overrides). */
export const KNOWN_MODELS: readonly string[] = [
  "gemini-2.0-flash",
  "gemini-2.0-flash-001",
  "gemini-2.0-flash-lite",
  "gemini-2.0-flash-lite-001",
  "gemini-2.5-flash",
  "gemini-2.5-flash-lite",
  "gemini-2.5-pro",
  "gemini-3-flash-preview",
  "gemini-3-pro-preview",
  "gemini-flash-latest",
  "gemini-flash-lite-latest",
  "gemini-pro-latest",
];

/** Largest `maxOutputTokens` a model takes (2.0 models: 8192; later ones: 65536). */
export function outputTokenLimit(model: string): number {
  return model.startsWith("gemini-2.0") ? 8192 : 65536;
}

/** How long files and unfinished batches live: 48 hours. */
export const LIFETIME_MS = 48 * 60 * 60 * 1000;

/**
 * An RFC 3339 timestamp as Google writes it: UTC, `Z`, nine fractional digits (the real API sends
 * nanoseconds, e.g. `2025-09-07T11:55:07.827892252Z`, which trips parsers that expect three).
 */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "000000Z");
}

/**
 * A deterministic lowercase id. `salt` keeps ids of different kinds (batches, files, responses)
 * apart even when their counters agree.
 */
export function makeId(salt: number, n: number, width: number): string {
  return hexId(salt * 1_000_003 + n, width);
}

/** A `responseId` in the real API's style: 22 characters of URL-safe base64. */
export function responseId(n: number): string {
  const hex = makeId(7, n, 32);
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/** The body as a JSON object, or the 400 Google answers for a body that is not one. */
export function jsonBody(req: EmulatorRequest): Record<string, unknown> {
  if (req.raw.length === 0) return {};
  let body: unknown;
  try {
    body = req.json<unknown>();
  } catch {
    throw invalidArgument("Invalid JSON payload received. Unexpected token.", [
      { description: "Invalid JSON payload received. Unexpected token." },
    ]);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    const message = `Invalid JSON payload received. Expected an object, got ${
      JSON.stringify(body)
    }.`;
    throw invalidArgument(message, [{ description: message }]);
  }
  return body as Record<string, unknown>;
}

/** Whether a value is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** `maxOutputTokens` → `max_output_tokens`, the proto field name Google's messages use. */
export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `max_output_tokens` → `maxOutputTokens`: proto JSON accepts both spellings of every field. */
export function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The page size a list call asks for: the default when absent or ≤ 0, capped at `max`. */
export function pageSize(raw: string | null, fallback: number, max: number): number {
  const n = Number(raw ?? "");
  if (!Number.isFinite(n) || n <= 0) return fallback;
  return Math.min(Math.floor(n), max);
}

/** An opaque page token: the creation number of the last item on the page. */
export function pageToken(kind: string, seq: number): string {
  return btoa(`${kind}:${seq}`).replace(/=+$/, "");
}

/** The creation number a page token carries, or the 400 for a token the emulator did not issue. */
export function readPageToken(kind: string, token: string): number {
  let text = "";
  try {
    text = atob(token);
  } catch { /* reported below */ }
  const seq = text.startsWith(`${kind}:`) ? Number(text.slice(kind.length + 1)) : NaN;
  if (!Number.isInteger(seq)) throw invalidArgument(`Invalid page token: ${token}`);
  return seq;
}
