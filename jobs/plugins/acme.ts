/**
 * An example third-party plugin module: one file that adds two plugins of different kinds, an
 * offline provider (`acme`, which shouts the prompt back) and a format (`tsv`). A job loads it
 * with `plugins: [./plugins/acme.ts]`; a package would default-export the same list.
 *
 * It imports only types from Loom, so it has no runtime dependency on it.
 */
import type { FormatV1, PluginDefinition, ProviderV1 } from "../../core/mod.ts";

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

/** Tab-separated values without quoting: a cell may not hold a tab or a line break. */
const tsv: PluginDefinition<"format"> = {
  apiVersion: 1,
  kind: "format",
  name: "tsv",
  description: "Example format: tab-separated values, first line the header.",
  create(): FormatV1 {
    return {
      specificationVersion: "loom.format.v1",
      name: "tsv",
      extensions: [".tsv"],
      async open(input, { path }) {
        const lines = splitLines(input);
        const first = await lines.next();
        const columns = first.done ? [] : first.value.split("\t");
        async function* rows() {
          let index = 0;
          let line = 1;
          for await (const text of { [Symbol.asyncIterator]: () => lines }) {
            line++;
            if (text === "") continue;
            const cells = text.split("\t");
            if (cells.length !== columns.length) {
              throw new Error(
                `${path}:${line}: ${cells.length} cells, the header has ${columns.length}`,
              );
            }
            yield {
              index: index++,
              line,
              fields: Object.fromEntries(columns.map((c, i) => [c, cells[i]])),
            };
          }
        }
        return { layout: { columns }, rows: rows() };
      },
      async *write(rows, { layout, added }) {
        const clean = (v: unknown) => String(v ?? "").replace(/[\t\r\n]+/g, " ");
        yield [...(layout.columns ?? []), ...added].join("\t") + "\n";
        for await (const { row, added: values } of rows) {
          const cells = [
            ...(layout.columns ?? []).map((c) => row.fields[c]),
            ...added.map((c) => values[c]),
          ];
          yield cells.map(clean).join("\t") + "\n";
        }
      },
    };
  },
};

async function* splitLines(input: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of input) {
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split(/\r?\n/);
    rest = parts.pop() ?? "";
    yield* parts;
  }
  rest += decoder.decode();
  if (rest !== "") yield rest;
}

export default [acme, tsv];
