/**
 * Benchmark: `loom view` on a large output (issue 16's targets: the first page in < 300 ms, a
 * filtered page in < 1 s on 1M rows). Writes a CSV output of `rows` rows as Loom writes them
 * (usage columns; 1 row in 97 failed, 1 in 13 cut off by length), starts a viewer on it in this
 * process and times, over HTTP: the first page on a cold start (the index is being built), the
 * whole index, then pages a user asks for: failed only, a finish reason sorted by output tokens,
 * a text search (the first scans every row; its next page reuses the matches), a page deep in
 * the file, and one row. Then compare against a second output of the same rows (1 answer in 5
 * different, failures 1 row in 89): its first page while that second file is being indexed, and
 * pages of the rows whose answers differ.
 *
 *   node scripts/bench/view.ts [rows=1000000]
 *   deno run -A scripts/bench/view.ts [rows]
 * @module
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runtimeLabel } from "../../core/base/runtime.ts";
import { startViewer } from "../../cli/commands/view.ts";

const rows = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), "loom-bench-view-"));

/** `variant` 1: the second output compare measures, with other answers and failures. */
async function writeOutput(path: string, variant = 0): Promise<void> {
  const out = createWriteStream(path);
  out.write(
    "id,text,llm_response,llm_error,llm_finish_reason,llm_input_tokens,llm_output_tokens\n",
  );
  for (let i = 0; i < rows; i++) {
    const failed = i % (variant ? 89 : 97) === 0;
    const line = failed
      ? `${i},"Summarise item ${i}, briefly",,"429 rate limited, retry later",,,\n`
      : `${i},"Summarise item ${i}, briefly","Item ${i} is about ${
        i % 7 ? "weather" : "needles"
      } and ${variant && i % 5 === 0 ? "less" : "more"}",,${i % 13 ? "stop" : "length"},${
        20 + (i % 50)
      },${10 + (i % 300)}\n`;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

try {
  const path = join(dir, "out.csv");
  const second = join(dir, "second.csv");
  await writeOutput(path);
  await writeOutput(second, 1);
  const viewer = await startViewer({
    targets: [path, second],
    env: { LOOM_HOME: dir },
    cwd: dir,
  });
  const url = new URL(viewer.url);
  const headers = { "x-loom-token": url.searchParams.get("token")! };
  const get = async (query: string, base = "/api/files/0/") => {
    const started = performance.now();
    const response = await fetch(`http://${url.host}${base}${query}`, { headers });
    const body = await response.json() as { matched?: number; indexing?: boolean };
    if (!response.ok) throw new Error(JSON.stringify(body));
    return { ms: performance.now() - started, body };
  };
  const figures: [string, number, string][] = [];
  const started = performance.now();
  const first = await get("rows");
  figures.push(["first page, cold (index being built)", first.ms, ""]);
  while ((await get("rows?failed=1")).body.indexing) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  figures.push(["whole index built (one pass)", performance.now() - started, ""]);
  for (
    const [label, query] of [
      ["first page, indexed", "rows"],
      ["failed only", "rows?failed=1"],
      ["failed only, page 100", "rows?failed=1&offset=4950"],
      ["finish=length, by output tokens desc", "rows?finish=length&sort=output_tokens&order=desc"],
      ["text search (scans every row)", "rows?q=needles"],
      ["text search, next page (matches kept)", "rows?q=needles&offset=50"],
      ["text search + failed only", "rows?q=rate%20limited&failed=1"],
      ["page at 90% of the file", `rows?offset=${Math.floor(rows * 0.9)}`],
      ["one row", `rows/${Math.floor(rows * 0.6)}`],
    ]
  ) {
    const { ms, body } = await get(query);
    figures.push([label, ms, body.matched === undefined ? "" : `${body.matched} matched`]);
  }
  // Compare: file 0 (indexed) against file 1 (not yet: its first page is a cold one).
  const compare = "/api/compare/files/0/files/1/";
  const cold = await get("rows", compare);
  figures.push(["compare, first page (B being indexed)", cold.ms, ""]);
  while ((await get("rows?differ=1", compare)).body.indexing) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (
    const [label, query] of [
      ["compare, first page", "rows"],
      ["compare, answers differ", "rows?differ=1"],
      ["compare, answers differ, page 100", "rows?differ=1&offset=4950"],
      ["compare, failed in B only", "rows?failed=b"],
      ["compare, one row", `rows/${Math.floor(rows * 0.6)}`],
    ]
  ) {
    const { ms, body } = await get(query, compare);
    figures.push([label, ms, body.matched === undefined ? "" : `${body.matched} matched`]);
  }
  await viewer.stop();
  const size = statSync(path).size / 1024 / 1024;
  console.log(
    `loom view, ${rows.toLocaleString("en-US")} rows (${
      size.toFixed(0)
    } MiB CSV), ${runtimeLabel()}`,
  );
  for (const [label, ms, note] of figures) {
    console.log(`  ${label.padEnd(40)} ${ms.toFixed(0).padStart(7)} ms  ${note}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
