/**
 * Durations as people write them on the command line (`--older-than 30d`): a whole number and one
 * unit, `s`, `m`, `h`, `d` or `w`.
 * @module
 */
import { LoomUsageError } from "../base/errors.ts";

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const EXAMPLES = "30d, 12h, 90m, 45s or 2w";

/**
 * The milliseconds of `text` (`30d`, `12h`, `90m`, `45s`, `2w`).
 * @throws LoomUsageError for anything else (a fraction, no unit, an unknown unit, zero, a number
 *   too large), with examples of what is accepted.
 */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!match) {
    throw new LoomUsageError(
      `${JSON.stringify(text)} is not a duration: write a whole number and a unit ` +
        `(s, m, h, d, w), e.g. ${EXAMPLES}`,
    );
  }
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  if (ms === 0) {
    throw new LoomUsageError(`${JSON.stringify(text)} is no time at all: give e.g. ${EXAMPLES}`);
  }
  if (!Number.isSafeInteger(ms)) {
    throw new LoomUsageError(
      `${JSON.stringify(text)} is too long a duration: give e.g. ${EXAMPLES}`,
    );
  }
  return ms;
}
