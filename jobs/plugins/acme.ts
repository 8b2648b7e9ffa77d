/**
 * An example third-party plugin module: one file that adds two plugins of different kinds, an
 * offline provider (`acme`, which shouts the prompt back) and a format (`tsv`). A job loads it
 * with `plugins: [./plugins/acme.ts]`; a package would default-export the same list. It passes
 * the format conformance suite (`acme.test.ts`).
 *
 * It imports Loom's plugin kit from the repository; a plugin of your own imports the same names
 * from `loom-batch/plugin`. Bad input throws Loom's `LoomDataError`, which Loom reports as one
 * line naming the file and line.
 */
import {
  type FormatV1,
  LoomDataError,
  type PluginDefinition,
  type ProviderV1,
} from "../../core/plugin.ts";

const acme: PluginDefinition<"provider"> = {
  apiVersion: 1,
  kind: "provider",
  name: "acme",
  description: "Example provider: answers with the prompt in capitals, prefixed by ACME.",
  create(options): ProviderV1 {
    const prefix = typeof options.prefix === "string" ? options.prefix : "ACME";
    return {
      specificationVersion: "loom.provider.v1",
      name: "acme",
      capabilities: { sync: true, batch: false, tokens: false },
      cacheIdentity: { prefix }, // the prefix changes the answer, so it is part of the cache key
      generate(request) {
        const prompt = request.messages.at(-1)?.content ?? "";
        return Promise.resolve({
          text: `${prefix}: ${prompt.toUpperCase()}`,
          finishReason: "stop",
        });
      },
    };
  },
};

/**
 * Tab-separated values, the first line the header. A value's backslash, tab, line feed and carriage
 * return are written as `\\`, `\t`, `\n` and `\r` (the usual TSV escapes), so any text round-trips.
 */
const tsv: PluginDefinition<"format"> = {
  apiVersion: 1,
  kind: "format",
  name: "tsv",
  description:
    "Example format: tab-separated values with backslash escapes, first line the header.",
  create(): FormatV1 {
    return {
      specificationVersion: "loom.format.v1",
      name: "tsv",
      extensions: [".tsv"],
      async open(input, { path }) {
        const lines = splitLines(input, path);
        const first = await lines.next();
        const columns = first.done ? [] : header(first.value, path);
        async function* rows() {
          let index = 0;
          let line = 1;
          for await (const text of { [Symbol.asyncIterator]: () => lines }) {
            line++;
            if (text === "") continue;
            const cells = text.split("\t");
            if (cells.length !== columns.length) {
              throw new LoomDataError(
                `${path}:${line}: ${cells.length} cells, the header has ${columns.length} ` +
                  "(write a tab inside a value as \\t)",
              );
            }
            const fields: Record<string, string> = {};
            columns.forEach((c, i) => fields[c] = unescape(cells[i], path, line));
            yield { index: index++, line, fields };
          }
        }
        return { layout: { columns }, rows: rows() };
      },
      async *write(rows, { layout, added }) {
        const columns = [...(layout.columns ?? []), ...added];
        yield columns.map(escape).join("\t") + "\n";
        for await (const { row, added: values } of rows) {
          const cells = [
            ...(layout.columns ?? []).map((c) => row.fields[c]),
            ...added.map((c) => values[c]),
          ];
          yield cells.map(cellText).map(escape).join("\t") + "\n";
        }
      },
    };
  },
};

/** The header's column names: each unique and not empty. */
function header(text: string, path: string): string[] {
  const names = text.split("\t").map((name) => unescape(name, path, 1));
  names.forEach((name, i) => {
    if (name === "" || names.indexOf(name) !== i) {
      throw new LoomDataError(
        `${path}:1: column ${i + 1} of the header is ${
          name === "" ? "empty" : `"${name}" again`
        } ` +
          "(give every column a unique name)",
      );
    }
  });
  return names;
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const UNESCAPES: Record<string, string> = { "\\": "\\", t: "\t", n: "\n", r: "\r" };

function escape(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]);
}

function unescape(value: string, path: string, line: number): string {
  return value.replace(/\\(.?)/gs, (_, c: string) => {
    const plain = UNESCAPES[c];
    if (plain === undefined) {
      throw new LoomDataError(
        `${path}:${line}: "\\${c}" is not an escape (write a backslash as \\\\)`,
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

/** The input's lines (a byte-order mark dropped); bytes that are not UTF-8 are a data error. */
async function* splitLines(
  input: AsyncIterable<Uint8Array>,
  path: string,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let rest = "";
  const decode = (chunk?: Uint8Array) => {
    try {
      return decoder.decode(chunk, { stream: chunk !== undefined });
    } catch {
      throw new LoomDataError(`${path}: not UTF-8 text (save it as UTF-8)`);
    }
  };
  for await (const chunk of input) {
    rest += decode(chunk);
    const parts = rest.split(/\r?\n/);
    rest = parts.pop() ?? "";
    yield* parts;
  }
  rest += decode();
  if (rest !== "") yield rest;
}

export { acme, tsv };
export default [acme, tsv];
