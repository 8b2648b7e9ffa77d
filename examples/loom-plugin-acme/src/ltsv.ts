/**
 * The `ltsv` format: Labeled Tab-Separated Values (ltsv.org), one record a line, each field
 * `label:value`, fields separated by tabs. The first record's labels are the dataset's columns;
 * every later record must have the same labels, each once, in any order (a missing, unknown or
 * repeated label is refused, naming the file, line and label: a typo never becomes an empty
 * prompt). Blank lines are skipped.
 *
 * LTSV has no escapes, so a value's backslash, tab, line feed and carriage return are written
 * as `\\`, `\t`, `\n` and `\r`, and read back; any other backslash sequence is refused. A label
 * is any text without a colon, tab or line break (ltsv.org recommends `[0-9A-Za-z_.-]+`).
 * @module
 */
import { definePlugin, type FormatV1, LoomDataError } from "loom-batch/plugin";

/** The `ltsv` format plugin. */
export const ltsv = definePlugin({
  apiVersion: 1,
  kind: "format",
  name: "ltsv",
  description: "Example package format: Labeled Tab-Separated Values (label:value, tab-separated).",
  create(): FormatV1 {
    return {
      specificationVersion: "loom.format.v1",
      name: "ltsv",
      extensions: [".ltsv"],
      async open(input, { path }) {
        const lines = numberedLines(input, path);
        // The first record gives the columns, so it is read before `open` resolves.
        let first: Record<string, string> | undefined;
        let firstLine = 0;
        for (;;) {
          const next = await lines.next();
          if (next.done) break;
          const [line, text] = next.value;
          if (text === "") continue;
          first = fieldsOf(text, path, line);
          firstLine = line;
          break;
        }
        const columns = first ? Object.keys(first) : [];
        async function* rows() {
          try {
            if (!first) return;
            yield { index: 0, line: firstLine, fields: first };
            let index = 1;
            for await (const [line, text] of { [Symbol.asyncIterator]: () => lines }) {
              if (text === "") continue;
              const fields = inColumns(fieldsOf(text, path, line), columns, path, line);
              yield { index: index++, line, fields };
            }
          } finally {
            // A reader that stops early (even after the first row) closes the input.
            await lines.return(undefined);
          }
        }
        return { layout: { columns }, rows: rows() };
      },
      async *write(rows, { layout, added }) {
        const input = layout.columns ?? [];
        for (const label of [...input, ...added]) checkLabel(label);
        for await (const { row, added: values } of rows) {
          const fields = [
            ...input.map((c) => `${c}:${escape(cellText(row.fields[c]))}`),
            ...added.map((c) => `${c}:${escape(cellText(values[c]))}`),
          ];
          yield fields.join("\t") + "\n";
        }
      },
    };
  },
});

/**
 * A record's fields in the order of its line; a field without a label or a repeated label is
 * refused. Built from a Map, so a label such as `__proto__` is a column like any other.
 */
function fieldsOf(text: string, path: string, line: number): Record<string, string> {
  const fields = new Map<string, string>();
  for (const [i, field] of text.split("\t").entries()) {
    const colon = field.indexOf(":");
    const where = `${path}:${line}: field ${i + 1}`;
    if (colon <= 0) {
      const what = colon < 0 ? "has no colon" : "has an empty label";
      throw new LoomDataError(
        `${where} ${what} (write each field as label:value, fields separated by tabs; a tab ` +
          "inside a value as \\t)",
      );
    }
    const label = field.slice(0, colon);
    if (fields.has(label)) {
      throw new LoomDataError(`${where}: label "${label}" again (give each label once a line)`);
    }
    fields.set(label, unescape(field.slice(colon + 1), path, line));
  }
  return Object.fromEntries(fields);
}

/** A later record's fields in the first record's order; its labels must be the same. */
function inColumns(
  fields: Record<string, string>,
  columns: readonly string[],
  path: string,
  line: number,
): Record<string, string> {
  const unknown = Object.keys(fields).find((label) => !columns.includes(label));
  if (unknown !== undefined) {
    throw new LoomDataError(
      `${path}:${line}: label "${unknown}" is not in the first record (every record has the ` +
        `first record's labels: ${columns.join(", ")})`,
    );
  }
  const missing = columns.find((label) => !Object.hasOwn(fields, label));
  if (missing !== undefined) {
    throw new LoomDataError(
      `${path}:${line}: no "${missing}" label (every record has the first record's labels; ` +
        `write an empty value as ${missing}:)`,
    );
  }
  return Object.fromEntries(columns.map((label) => [label, fields[label]]));
}

function checkLabel(label: string): void {
  if (label === "" || /[:\t\r\n]/.test(label)) {
    throw new LoomDataError(
      `ltsv: cannot write a column named ${JSON.stringify(label)}: an LTSV label has no colon, ` +
        "tab or line break (rename the column, or write the output as CSV or JSONL)",
    );
  }
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const UNESCAPES: Record<string, string> = { "\\": "\\", t: "\t", n: "\n", r: "\r" };

function escape(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]);
}

function unescape(value: string, path: string, line: number): string {
  if (!value.includes("\\")) return value;
  return value.replace(/\\(.?)/gs, (_, c: string) => {
    const plain = UNESCAPES[c];
    if (plain === undefined) {
      throw new LoomDataError(
        `${path}:${line}: "\\${c}" is not an escape (\\\\, \\t, \\n and \\r are; write a ` +
          "backslash as \\\\)",
      );
    }
    return plain;
  });
}

/** An added value as text: null is empty, structured values are JSON. */
function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

const LF = 0x0a;

/**
 * The input's lines with their 1-based numbers, a final line feed (and a carriage return before
 * it) dropped, a byte-order mark dropped. Lines are cut as bytes and decoded one by one, so bytes
 * that are not UTF-8 are reported with their line.
 */
async function* numberedLines(
  input: AsyncIterable<Uint8Array>,
  path: string,
): AsyncGenerator<[number, string]> {
  // Only the first line may start with a byte-order mark; on any other, U+FEFF is text.
  const first = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const rest = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let line = 0;
  const decode = (bytes: Uint8Array): [number, string] => {
    line++;
    let text: string;
    try {
      text = (line === 1 ? first : rest).decode(bytes);
    } catch {
      throw new LoomDataError(`${path}:${line}: not UTF-8 text (save the file as UTF-8)`);
    }
    return [line, text.endsWith("\r") ? text.slice(0, -1) : text];
  };
  let pending: Uint8Array[] = [];
  for await (const chunk of input) {
    let start = 0;
    for (let end = chunk.indexOf(LF); end >= 0; end = chunk.indexOf(LF, start)) {
      pending.push(chunk.subarray(start, end));
      yield decode(concat(pending));
      pending = [];
      start = end + 1;
    }
    if (start < chunk.length) pending.push(chunk.slice(start));
  }
  if (pending.length > 0) yield decode(concat(pending));
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
