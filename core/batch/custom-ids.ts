/**
 * Loom's custom ids (`row-<position>`, which fits every provider's rule) and how a shard's list
 * of them is kept in the state store.
 * @module
 */
import { LoomError } from "../base/errors.ts";

/** The `custom_id` of a row: its position, which fits every provider's rule. */
export function customIdOf(index: number): string {
  return `row-${index}`;
}

/** The row position a `custom_id` names, or undefined for an id Loom did not make. */
export function rowOfCustomId(id: string): number | undefined {
  const match = /^row-(\d+)$/.exec(id);
  return match ? Number(match[1]) : undefined;
}

/** The row of a custom id Loom made (`row-7`, never `row-07`), or -1. */
function loomRow(id: string): number {
  if (!id.startsWith("row-")) return -1;
  const digits = id.slice(4);
  const row = Number(digits);
  return Number.isSafeInteger(row) && row >= 0 && String(row) === digits ? row : -1;
}

/**
 * A shard's custom ids as stored: one a line, except that a run of Loom's own consecutive ids
 * (`row-7`, `row-8`, … `row-9000`) is the one line `row-7..row-9000` (a custom id holds no dot,
 * so neither is taken for the other). A shard of 50,000 rows is one line instead of 600 KB.
 */
export function packIds(ids: readonly string[]): string {
  const lines: string[] = [];
  for (let k = 0; k < ids.length;) {
    const first = loomRow(ids[k]);
    let end = k + 1;
    if (first >= 0) { while (end < ids.length && loomRow(ids[end]) === first + (end - k)) end++; }
    lines.push(end - k > 2 ? `${ids[k]}..${ids[end - 1]}` : ids.slice(k, end).join("\n"));
    k = end;
  }
  return lines.join("\n");
}

/** The custom ids {@link packIds} stored (or a migrated file held, one a line). */
export function unpackIds(text: string): string[] {
  const ids: string[] = [];
  for (const line of text.split("\n")) {
    const range = line.indexOf("..");
    if (range < 0) {
      // A migrated file may end in a newline.
      if (line) ids.push(line);
      continue;
    }
    const first = loomRow(line.slice(0, range));
    const last = loomRow(line.slice(range + 2));
    if (first < 0 || last < first) throw new LoomError(`unreadable custom ids: ${line}`);
    for (let row = first; row <= last; row++) ids.push(customIdOf(row));
  }
  return ids;
}
