/**
 * The dataset the sync benchmarks read: `id,category,prompt`, one short prompt a row with a comma
 * and doubled quotes in it (so every row takes the CSV reader's quoted path).
 * @module
 */
import { createWriteStream, writeFileSync } from "node:fs";
import { once } from "node:events";

/** Writes `rows` rows of the benchmark dataset to `path`. */
export async function makeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("id,category,prompt\n");
  for (let i = 0; i < rows; i++) {
    const line = `${i},cat-${
      i % 17
    },"Summarize item ${i}: a short text, with a comma and ""quotes"" in it."\n`;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "close");
}

/** Writes a sync job file that runs `input` through `echo` into `output` with 64 workers. */
export function writeEchoSyncJob(
  file: string,
  input: string,
  output: string,
  cache: boolean,
): string {
  writeFileSync(
    file,
    `dataset: { path: ${input} }\nprovider: echo\nmodel: m\nmode: sync\noutput: { path: ${output} }\n` +
      `sync: { workers: 64, cache: ${cache} }\n`,
  );
  return file;
}
