/**
 * The connection options every SDK-based provider takes: `base_url` (another endpoint, such as
 * the emulator or a proxy) and `timeout_ms` (per call). Unknown options are errors, so a typo is
 * never silently ignored.
 * @module
 */
import { LoomUsageError } from "../../../core/base/errors.ts";

/** The options every SDK-based provider understands. */
export interface ConnectionOptions {
  base_url?: string;
  timeout_ms?: number;
}

/** Checks a provider's options; `extra` names options the provider adds. `apiKey` is the core's. */
export function checkConnectionOptions(
  provider: string,
  options: Readonly<Record<string, unknown>>,
  extra: readonly string[] = [],
): ConnectionOptions & Record<string, unknown> {
  const known = ["base_url", "timeout_ms", ...extra];
  const unknown = Object.keys(options).filter((k) => k !== "apiKey" && !known.includes(k));
  if (unknown.length) {
    throw new LoomUsageError(
      `${provider}: unknown provider option(s) ${unknown.join(", ")} (known: ${known.join(", ")})`,
    );
  }
  const { base_url, timeout_ms } = options;
  if (base_url !== undefined && (typeof base_url !== "string" || !/^https?:\/\//.test(base_url))) {
    throw new LoomUsageError(`${provider}: base_url must be an http(s) URL`);
  }
  if (timeout_ms !== undefined && !(typeof timeout_ms === "number" && timeout_ms > 0)) {
    throw new LoomUsageError(`${provider}: timeout_ms must be a positive number of milliseconds`);
  }
  return options as ConnectionOptions & Record<string, unknown>;
}

/** Per-call timeout when the job gives none: long, since some answers take minutes. */
export const DEFAULT_TIMEOUT_MS = 600_000;
