/**
 * `loom view`'s compare: two outputs of the same dataset (two models, two prompts) row by row.
 * Rows are lined up by position; whether two answers or two inputs are equal comes from the hashes
 * each row index keeps (row-hash.ts), so a filter over 1M rows reads no file. Only the rows of a
 * page are read back, and their answers diffed word by word (jsdiff).
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { diffWordsWithSpace } from "diff";
import type { Context, Hono } from "hono";
import type { ViewSources } from "./app.ts";
import { answerText } from "./row-hash.ts";
import type { RowDigests, ShownRow } from "./row-index.ts";
import { Answer, indexedTarget, intParam, type TargetRef } from "./targets.ts";

/** A piece of a word diff: in both answers, only in A's (`removed`) or only in B's (`added`). */
export interface Segment {
  readonly text: string;
  readonly added?: true;
  readonly removed?: true;
}

/** How long a page waits for both indexes to be finished before answering from what is indexed. */
const WAIT_MS = 300;
/** Characters of each answer diffed on a page (the detail diffs them whole). */
const PAGE_DIFF_CHARS = 1000;
/** The longest a diff may take before the answers are shown without one. */
const DIFF_MS = { page: 50, detail: 1000 };
const FAILED = ["any", "a", "b", "both"] as const;

/** The word diff of two answers, or null when it would take too long. */
export function diffSegments(a: string, b: string, timeout: number): Segment[] | null {
  // Spaces are words too, so that each side put back together is its answer exactly.
  const changes = diffWordsWithSpace(a, b, { timeout });
  if (!changes) return null;
  return changes.map((c) => ({
    text: c.value,
    ...(c.added ? { added: true as const } : {}),
    ...(c.removed ? { removed: true as const } : {}),
  }));
}

/** Row `i` of two digests: whether each side failed, the answers differ, the inputs differ. */
function lineUp(a: RowDigests, b: RowDigests, i: number) {
  const failedA = a.status[i] !== 0;
  const failedB = b.status[i] !== 0;
  // Both failed: neither has an answer to compare.
  const differ = failedA !== failedB || (!failedA && a.answer[i] !== b.answer[i]);
  // A corrupt row has no input to compare (it shows as failed).
  const readable = a.status[i] !== 2 && b.status[i] !== 2;
  return { failedA, failedB, differ, inputDiffers: readable && a.input[i] !== b.input[i] };
}

type Summary = ReturnType<typeof summarize>;
/** Summaries of pairs of finished indexes (their arrays no longer change), by A's and B's. */
const summaries = new WeakMap<readonly number[], WeakMap<readonly number[], Summary>>();

/** The summary of two digests, counted once both indexes are finished. */
function summaryOf(a: RowDigests, b: RowDigests): Summary {
  if (!a.done || !b.done) return summarize(a, b);
  let byB = summaries.get(a.status);
  if (!byB) summaries.set(a.status, byB = new WeakMap());
  let s = byB.get(b.status);
  if (!s) byB.set(b.status, s = summarize(a, b));
  return s;
}

/** The counts of the summary line, and where the two outputs are not the same dataset. */
function summarize(a: RowDigests, b: RowDigests) {
  const compared = Math.min(a.rows, b.rows);
  const s = {
    compared,
    identical: 0,
    differ: 0,
    failedAOnly: 0,
    failedBOnly: 0,
    failedBoth: 0,
    inputDiffers: 0,
    firstInputDiffers: null as number | null,
  };
  for (let i = 0; i < compared; i++) {
    const r = lineUp(a, b, i);
    if (r.failedA && r.failedB) s.failedBoth++;
    else if (r.differ) s.differ++;
    else s.identical++;
    if (r.failedA && !r.failedB) s.failedAOnly++;
    if (r.failedB && !r.failedA) s.failedBOnly++;
    if (r.inputDiffers) {
      s.inputDiffers++;
      s.firstInputDiffers ??= i;
    }
  }
  return s;
}

/** What a compare page asks for. */
interface CompareQuery {
  readonly offset: number;
  readonly limit: number;
  /** Only the rows whose answers differ. */
  readonly differ: boolean;
  /** Only the rows failed on either side, in A only, in B only, or in both. */
  readonly failed?: (typeof FAILED)[number];
  readonly text?: string;
}

function compareQueryOf(c: Context): CompareQuery {
  const failed = c.req.query("failed") || undefined;
  if (failed !== undefined && !(FAILED as readonly string[]).includes(failed)) {
    throw new Answer(
      400,
      `failed must be one of ${FAILED.join(", ")}, not ${JSON.stringify(failed)}`,
    );
  }
  return {
    offset: intParam(c, "offset", 0, Number.MAX_SAFE_INTEGER),
    limit: Math.max(1, intParam(c, "limit", 50, 500)),
    differ: c.req.query("differ") === "1",
    failed: failed as CompareQuery["failed"],
    text: c.req.query("q") || undefined,
  };
}

/** The output a compare route's `kind`/`name` pair names (`files/0`, `jobs/ID`, `runs/ID`). */
function refFor(kind: string, name: string): TargetRef {
  if (kind === "files") return { file: name };
  if (kind === "jobs") return { id: name };
  if (kind === "runs") return { run: name };
  throw new Answer(
    404,
    `compare takes files/N, jobs/ID or runs/ID on each side, not ${kind}/${name}`,
  );
}

/** Both sides of a compare route, indexed. */
async function sidesOf(c: Context, sources: ViewSources) {
  const p = c.req.param();
  return await Promise.all([
    indexedTarget(sources, refFor(p.ka, p.a)),
    indexedTarget(sources, refFor(p.kb, p.b)),
  ]);
}

/** One row of both sides as a page shows it. */
function pairOf(
  n: number,
  a: ShownRow | undefined,
  b: ShownRow | undefined,
  da: RowDigests,
  db: RowDigests,
  chars: number,
  timeout: number,
) {
  const both = a !== undefined && b !== undefined;
  const r = both ? lineUp(da, db, n) : undefined;
  let diff: Segment[] | null = null;
  let cut = false;
  if (r?.differ && a && b) {
    const ta = answerText(a.fields);
    const tb = answerText(b.fields);
    diff = diffSegments(ta.slice(0, chars), tb.slice(0, chars), timeout);
    // The diff of the answers' beginnings: the page says the rest is cut.
    cut = diff !== null && Math.max(ta.length, tb.length) > chars;
  }
  return {
    n,
    a: a ?? null,
    b: b ?? null,
    differ: r ? r.differ : null,
    inputDiffers: r ? r.inputDiffers : null,
    diff,
    cut,
  };
}

/** Registers `/api/compare/KIND/NAME/KIND/NAME/rows` (a page) and `…/rows/N` (one row). */
export function registerCompare(app: Hono, sources: ViewSources): void {
  const base = "/api/compare/:ka/:a/:kb/:b";

  app.get(`${base}/rows`, async (c) => {
    const query = compareQueryOf(c);
    const [A, B] = await sidesOf(c, sources);
    const unfiltered = !query.differ && !query.failed && !query.text;
    const last = query.offset + query.limit - 1;
    // A page in file order waits only for its own rows, as the rows page does; a filter answers
    // from the rows indexed so far (a small file is indexed by then).
    if (unfiltered) await Promise.all([A.index.rows([last]), B.index.rows([last])]);
    else await Promise.race([Promise.all([A.index.finished, B.index.finished]), delay(WAIT_MS)]);
    const da = A.index.digests;
    const db = B.index.digests;
    const total = Math.max(da.rows, db.rows);
    let matching: Uint8Array | undefined;
    if (query.text) {
      matching = new Uint8Array(total);
      for (const side of [A, B]) {
        for (const i of await side.index.search(query.text)) matching[i] = 1;
      }
    }
    const keep = (i: number) => {
      if (matching && !matching[i]) return false;
      if (!query.differ && !query.failed) return true;
      if (i >= da.rows || i >= db.rows) return false;
      const r = lineUp(da, db, i);
      if (query.differ && !r.differ) return false;
      switch (query.failed) {
        case "any":
          return r.failedA || r.failedB;
        case "a":
          return r.failedA && !r.failedB;
        case "b":
          return r.failedB && !r.failedA;
        case "both":
          return r.failedA && r.failedB;
      }
      return true;
    };
    let picked: number[] = [];
    let matched = 0;
    if (unfiltered) {
      matched = total;
      for (let i = query.offset; i < Math.min(total, query.offset + query.limit); i++) {
        picked.push(i);
      }
    } else {
      // Counted in one loop; only the page's positions are kept.
      for (let i = 0; i < total; i++) {
        if (!keep(i)) continue;
        if (matched >= query.offset && picked.length < query.limit) picked.push(i);
        matched++;
      }
    }
    const [ra, rb] = await Promise.all([A.index.rows(picked), B.index.rows(picked)]);
    const byA = new Map(ra.map((r) => [r.n, r]));
    const byB = new Map(rb.map((r) => [r.n, r]));
    picked = picked.filter((n) => byA.has(n) || byB.has(n));
    const summary = summaryOf(da, db);
    return c.json({
      a: { title: A.title, format: A.format.name, rows: da.rows },
      b: { title: B.title, format: B.format.name, rows: db.rows },
      indexing: !da.done || !db.done,
      summary,
      columns: da.columns.filter((k) => !k.startsWith("llm_")),
      matched,
      rows: picked.map((n) =>
        pairOf(n, byA.get(n), byB.get(n), da, db, PAGE_DIFF_CHARS, DIFF_MS.page)
      ),
    });
  });

  app.get(`${base}/rows/:n`, async (c) => {
    const raw = c.req.param("n");
    const n = Number(raw);
    const [A, B] = await sidesOf(c, sources);
    const [[a], [b]] = Number.isInteger(n)
      ? await Promise.all([A.index.rows([n]), B.index.rows([n])])
      : [[], []];
    if (!a && !b) throw new Answer(404, `no row ${raw} in ${A.title} nor in ${B.title}`);
    const pair = pairOf(n, a, b, A.index.digests, B.index.digests, Infinity, DIFF_MS.detail);
    return c.json({ a: { title: A.title }, b: { title: B.title }, row: pair });
  });
}
