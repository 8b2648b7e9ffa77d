/**
 * Error helpers shared by the built-in formats, so every message has the same shape:
 * `file:line[:column]: what is wrong (what to do)`.
 * @module
 */
import { LoomDataError, LoomUsageError } from "../../../core/base/errors.ts";

/** The `file:line:column` prefix of a data error; line and column are left out when unknown. */
export function where(path: string, line?: number, column?: number): string {
  if (line === undefined) return path;
  return column === undefined ? `${path}:${line}` : `${path}:${line}:${column}`;
}

/** A {@link LoomDataError} for malformed input at a place in the file. */
export function dataError(
  path: string,
  line: number | undefined,
  message: string,
  options?: { column?: number; cause?: unknown },
): LoomDataError {
  return new LoomDataError(`${where(path, line, options?.column)}: ${message}`, {
    cause: options?.cause,
  });
}

/**
 * Rejects option keys a format does not know (a typo would otherwise be silently ignored) and
 * returns the options record.
 */
export function checkOptions(
  path: string,
  format: string,
  options: Readonly<Record<string, unknown>> | undefined,
  known: readonly string[],
): Readonly<Record<string, unknown>> {
  const given = options ?? {};
  for (const key of Object.keys(given)) {
    if (known.includes(key)) continue;
    const expected = known.length
      ? `known options: ${known.join(", ")}`
      : `the ${format} format takes no options`;
    throw new LoomUsageError(
      `${path}: unknown ${format} option "${key}" in dataset.options (${expected})`,
    );
  }
  return given;
}
