/**
 * The request log: what each emulated provider was asked, in order, so tests can assert on
 * calls, their order, their count and the SDK's retry count (`X-Stainless-Retry-Count`).
 * @module
 */

/** One request as the emulator saw it. */
export interface LoggedRequest {
  /** 1-based order of arrival. */
  seq: number;
  /** Wall-clock arrival time in ms (for pacing measurements; the emulator's clock may be manual). */
  receivedMs?: number;
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** Lower-case header names; the credential headers are masked. */
  headers: Record<string, string>;
  /** The parsed JSON body, or undefined (binary or empty bodies). */
  body?: unknown;
  /** Body size in bytes. */
  bytes: number;
  /** `X-Stainless-Retry-Count` (0 on a first attempt), when the client sent it. */
  retryCount?: number;
  /** The status answered (0 when the connection was dropped). */
  status: number;
  /** The JSON answer delivered, if any (not set for streams, files, or an undelivered answer). */
  answer?: unknown;
  /** The fault rule that shaped the answer, if any. */
  fault?: string;
}

const SECRET_HEADERS = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/** Masks credentials so a log can be printed or asserted on without leaking them. */
export function maskHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(", ") : value;
    out[name] = SECRET_HEADERS.includes(name) ? (text ? "***" : "") : text;
  }
  return out;
}

/** The log of one emulator. */
export class RequestLog {
  readonly entries: LoggedRequest[] = [];

  add(entry: Omit<LoggedRequest, "seq">): LoggedRequest {
    const full = { seq: this.entries.length + 1, ...entry };
    this.entries.push(full);
    return full;
  }

  /** Entries whose method and path match (`"POST /v1/batches"`, or a path substring / RegExp). */
  find(what: string | RegExp): LoggedRequest[] {
    return this.entries.filter((e) => {
      const line = `${e.method} ${e.path}`;
      return typeof what === "string" ? line === what || e.path.includes(what) : what.test(line);
    });
  }

  /** How many requests matched. */
  count(what: string | RegExp): number {
    return this.find(what).length;
  }

  /** Forgets everything logged so far. */
  clear(): void {
    this.entries.length = 0;
  }
}
