// loom view's compare: the jobs page's offer to compare two outputs, the side-by-side page
// (#/compare/files/0/jobs/ID; runs/ID too) and one row of both (…/rows/K). The server lines the
// rows up and diffs the answers; here the diff's segments become <del>/<ins> spans, as text.

import {
  again,
  api,
  badge,
  cellText,
  checkboxFilter,
  currentDrawing,
  el,
  fmt,
  hashNavigator,
  PAGE,
  pageButtons,
  rowsTable,
  show,
  toolbar,
} from "./dom.js";

const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");
/** Characters of an answer shown in the table (the row's page shows it whole). */
const CELL_CHARS = 600;

/**
 * The jobs page's "compare" form: two selects over the files, the jobs with an output and the
 * ended sync runs with one (none for fewer than two).
 */
export function compareOffer(data) {
  const outputs = [
    ...data.files.map((f) => [`files/${f.n}`, f.path]),
    ...data.jobs.filter((j) => j.outputReady).map((j) => [`jobs/${j.id}`, `job ${j.id}`]),
    ...data.runs.filter((r) => r.outputReady && !r.active).map((r) => [
      `runs/${r.id}`,
      `run ${r.id} (${r.model})`,
    ]),
  ];
  if (outputs.length < 2) return [];
  const pick = (name, chosen) =>
    el(
      "select",
      { name, "aria-label": `compare ${name.toUpperCase()}` },
      outputs.map(([value, label], i) => el("option", { value, selected: i === chosen }, label)),
    );
  const a = pick("a", 0);
  const b = pick("b", 1);
  return [
    el("h2", {}, "Compare two outputs"),
    el(
      "form",
      {
        class: "toolbar compare-offer",
        onsubmit: (e) => {
          e.preventDefault();
          location.hash = `#/compare/${a.value}/${b.value}`;
        },
      },
      "A ",
      a,
      " B ",
      b,
      el("button", { type: "submit" }, "Compare"),
      el("span", { class: "muted" }, "the same dataset's rows side by side"),
    ),
  ];
}

/** An answer as text, with the diff's removed (A) or added (B) words marked. */
function answer(pair, side, chars) {
  const row = pair[side];
  if (!row) return el("span", { class: "muted" }, "no such row");
  if (!pair.diff) {
    const text = cellText(row.fields.llm_response);
    return text.length > chars ? `${text.slice(0, chars)}…` : text;
  }
  const mine = pair.diff.filter((s) => (side === "a" ? !s.added : !s.removed));
  return [
    ...mine.map((
      s,
    ) => (s.added ? el("ins", {}, s.text) : s.removed ? el("del", {}, s.text) : s.text)),
    pair.cut ? "…" : "",
  ];
}

/** A row's usage in short, or nothing when it has none (a failed row). */
function tokens(row) {
  const f = row?.fields ?? {};
  if (!f.llm_input_tokens && !f.llm_output_tokens) return "";
  return `${fmt(f.llm_input_tokens || null)} in / ${fmt(f.llm_output_tokens || null)} out`;
}

/** What tells the reader the two outputs are not the same dataset, or nothing. */
function mismatch(data) {
  const notes = [];
  const { a, b, summary } = data;
  if (!data.indexing && a.rows !== b.rows) {
    const [fewer, more, by] = a.rows > b.rows
      ? ["B", "A", a.rows - b.rows]
      : ["A", "B", b.rows - a.rows];
    notes.push(
      `Not the same dataset: ${fewer} has ${fmt(by)} row${by === 1 ? "" : "s"} fewer than ${more}` +
        ` (rows ${fmt(Math.min(a.rows, b.rows) + 1)}–${
          fmt(Math.max(a.rows, b.rows))
        } are only in ${more}).`,
    );
  }
  if (summary.inputDiffers) {
    const n = summary.inputDiffers;
    notes.push(
      `Not the same dataset: row ${fmt(summary.firstInputDiffers + 1)}'s input differs` +
        (n > 1 ? ` (${fmt(n)} rows in all).` : "."),
    );
  }
  return notes.map((n) => el("p", { class: "notice bad mismatch" }, n));
}

export async function compareView(pair, params, mine = currentDrawing()) {
  const base = `/compare/${pair}`;
  const query = new URLSearchParams(params);
  query.set("limit", String(PAGE));
  const data = await api(`/api${base}/rows?${query}`);
  if (mine !== currentDrawing()) return;
  crumbs.replaceChildren(el("a", { href: "#/" }, "jobs"), " / compare");
  const offset = Number(params.get("offset") ?? 0);
  const go = hashNavigator(`#${base}`, params);
  const failed = el(
    "select",
    { name: "failed", "aria-label": "failed", onchange: () => go({ failed: failed.value }) },
    [["", "failed or not"], ["any", "failed on either side"], ["a", "failed in A only"], [
      "b",
      "failed in B only",
    ], ["both", "failed in both"]].map(([v, label]) =>
      el("option", { value: v, selected: (params.get("failed") ?? "") === v }, label)
    ),
  );
  const tools = toolbar(params, go, "search both sides", {
    before: [checkboxFilter(params, go, "differ", "answers differ"), failed],
    after: [el("a", { href: `#/compare/${swapped(pair)}` }, "swap A and B")],
  });
  const s = data.summary;
  const summary = el(
    "p",
    { class: "summary" },
    `${fmt(s.compared)} rows compared: `,
    badge(`${fmt(s.identical)} identical`, "ok"),
    " ",
    badge(`${fmt(s.differ)} differ`, s.differ ? "differ" : ""),
    " ",
    badge(`failed in A only ${fmt(s.failedAOnly)}`, s.failedAOnly ? "error" : ""),
    " ",
    badge(`in B only ${fmt(s.failedBOnly)}`, s.failedBOnly ? "error" : ""),
    " ",
    badge(`in both ${fmt(s.failedBoth)}`, s.failedBoth ? "error" : ""),
    data.indexing ? el("span", { class: "muted" }, " — indexing…") : "",
  );
  const columns = data.columns;
  const table = el(
    "table",
    { class: "rows compare" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { class: "num" }, "#"),
        columns.map((c) => el("th", {}, c)),
        el("th", {}, "answer A"),
        el("th", {}, "answer B"),
        el("th", {}, "error A"),
        el("th", {}, "error B"),
        el("th", {}, "tokens A"),
        el("th", {}, "tokens B"),
      ),
    ),
    el(
      "tbody",
      {},
      data.rows.map((p) => {
        const input = (p.a ?? p.b).fields;
        return el(
          "tr",
          {
            class: [
              p.differ ? "differ" : p.differ === false ? "same" : "alone",
              p.inputDiffers ? "input-differs" : "",
            ].join(" ").trim(),
            "data-row": p.n,
            onclick: () => {
              location.hash = `#${base}/rows/${p.n}`;
            },
          },
          el(
            "td",
            { class: "num" },
            el("a", { href: `#${base}/rows/${p.n}` }, String(p.n + 1)),
            p.inputDiffers ? badge("input ≠", "error") : "",
          ),
          columns.map((c) => el("td", {}, cellText(input[c]).slice(0, 300))),
          ["a", "b"].map((side) =>
            el(
              "td",
              { class: `answer ${side}` },
              p[side] && p[side].status !== "ok" ? [badge(p[side].status), " "] : "",
              answer(p, side, CELL_CHARS),
            )
          ),
          ["a", "b"].map((side) =>
            el("td", { class: "failure" }, p[side] ? cellText(p[side].fields.llm_error) : "")
          ),
          el("td", { class: "num" }, tokens(p.a)),
          el("td", { class: "num" }, tokens(p.b)),
        );
      }),
    ),
  );
  const pager = pageButtons(
    offset,
    data.rows.length,
    data.matched,
    params.has("differ") || params.has("failed") || params.has("q"),
    go,
  );
  show(
    el("h1", {}, "Compare"),
    el(
      "p",
      { class: "sides" },
      el("strong", {}, "A: "),
      data.a.title,
      el("span", { class: "muted" }, ` (${fmt(data.a.rows)} rows)`),
      el("br"),
      el("strong", {}, "B: "),
      data.b.title,
      el("span", { class: "muted" }, ` (${fmt(data.b.rows)} rows)`),
    ),
    ...mismatch(data),
    summary,
    tools,
    rowsTable(table, data.rows.length),
    pager,
  );
  live.textContent = data.indexing ? "indexing the files…" : "";
  if (data.indexing) again(() => compareView(pair, params, mine), 1000);
}

/** A row's input (the columns that are not Loom's) as the items of a <dl>. */
function inputOf(fields) {
  return Object.entries(fields)
    .filter(([k]) => !k.startsWith("llm_"))
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, cellText(v))]);
}

/** `files/0/jobs/X` as `jobs/X/files/0`. */
function swapped(pair) {
  const [ka, a, kb, b] = pair.split("/");
  return `${kb}/${b}/${ka}/${a}`;
}

export async function compareRowView(pair, n, mine = currentDrawing()) {
  const base = `/compare/${pair}`;
  const data = await api(`/api${base}/rows/${n}`);
  if (mine !== currentDrawing()) return;
  const { row } = data;
  crumbs.replaceChildren(
    el("a", { href: "#/" }, "jobs"),
    " / ",
    el("a", { href: `#${base}` }, "compare"),
    ` / row ${row.n + 1}`,
  );
  const side = (name) => {
    const r = row[name.toLowerCase()];
    const title = data[name.toLowerCase()].title;
    if (!r) {
      return el(
        "section",
        { class: "side" },
        el("h2", {}, `${name}: ${title}`),
        el("p", { class: "muted" }, "no such row"),
      );
    }
    const f = r.fields;
    const usage = [
      "llm_finish_reason",
      "llm_input_tokens",
      "llm_output_tokens",
      "llm_reasoning_tokens",
      "llm_cost",
    ]
      .filter((k) => f[k] !== undefined && f[k] !== "" && f[k] !== null)
      .map((k) => `${k.slice(4).replace(/_/g, " ")}: ${cellText(f[k])}`);
    return el(
      "section",
      { class: `side side-${name.toLowerCase()}` },
      el("h2", {}, `${name}: ${title} `, badge(r.status)),
      r.problem ? el("p", { class: "notice bad" }, `This row is corrupt: ${r.problem}`) : "",
      // The inputs are not the same: each side's own, to see how.
      row.inputDiffers ? el("dl", { class: "row" }, inputOf(f)) : "",
      el("pre", { class: "answer" }, answer(row, name.toLowerCase(), Infinity)),
      f.llm_error ? el("p", { class: "failure" }, cellText(f.llm_error)) : "",
      el("p", { class: "muted usage" }, usage.join(" · ")),
    );
  };
  show(
    el(
      "h1",
      {},
      `Row ${row.n + 1} `,
      row.differ === null
        ? badge("only one side has it", "corrupt")
        : badge(row.differ ? "answers differ" : "same answer", row.differ ? "differ" : "ok"),
      row.inputDiffers ? [" ", badge("input differs", "error")] : "",
    ),
    el(
      "p",
      {},
      el("a", { href: `#${base}` }, "← back to the comparison"),
      " ",
      row.n > 0 ? el("a", { href: `#${base}/rows/${row.n - 1}` }, "previous row") : "",
      " ",
      el("a", { href: `#${base}/rows/${row.n + 1}` }, "next row"),
    ),
    row.inputDiffers ? "" : el("dl", { class: "row" }, inputOf((row.a ?? row.b).fields)),
    el("div", { class: "sides-by-side" }, side("A"), side("B")),
  );
  live.textContent = "";
}
