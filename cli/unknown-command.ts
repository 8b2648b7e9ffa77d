/**
 * `run` is the default command, so a mistyped command (`loom fecth`) would be read as a job file
 * and end with "job file not found". A first word that is neither a command nor a file nor looks
 * like a path is taken for a command instead, and the closest one is suggested.
 * @module
 */
import { existsSync } from "node:fs";
import { LoomUsageError } from "../core/base/errors.ts";

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment), so
 * `fecth` is one edit from `fetch`.
 */
export function editDistance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The name closest to `word` within two edits (and less than half the word), if any. */
export function closestName(word: string, names: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(word.toLowerCase(), name);
    if (
      distance <= 2 && distance < Math.max(2, word.length / 2) &&
      (!best || distance < best.distance)
    ) best = { name, distance };
  }
  return best?.name;
}

/**
 * Throws a usage error when `word`, given where a command or a job file goes, is no command, no
 * file, and no path either (it has no `.` or separator): a mistyped command.
 */
export function refuseUnknownCommand(word: string | undefined, commands: readonly string[]): void {
  if (word === undefined || word.startsWith("-") || commands.includes(word)) return;
  if (/[./\\]/.test(word) || existsSync(word)) return;
  const near = closestName(word, commands);
  throw new LoomUsageError(
    `unknown command "${word}"${near ? ` (did you mean ${near}?)` : ""}; see loom --help`,
  );
}
