// The rows of a batch job not merged yet (#/jobs/ID/input): its input rows, each with where it
// stands (answered or failed in a fetched batch, pending in a running one, not sent), a search and
// pages. The answers themselves come with the merge (loom fetch, or Fetch with --actions).

import {
  again,
  api,
  badge,
  cellText,
  currentDrawing,
  el,
  hashNavigator,
  PAGE,
  pageButtons,
  rowsTable,
  show,
  toolbar,
} from "./dom.js";

const KINDS = { answered: "ok", failed: "error", pending: "in_progress", "not sent": "" };

/** Draws the input rows of job `id` for the hash's `params` (offset, q). */
export async function inputView(id, params, crumbs, live, mine = currentDrawing()) {
  const query = new URLSearchParams(params);
  query.set("limit", String(PAGE));
  const base = `#/jobs/${id}/input`;
  const data = await api(`/api/jobs/${encodeURIComponent(id)}/input?${query}`);
  if (mine !== currentDrawing()) return;
  crumbs.replaceChildren(el("a", { href: "#/" }, "jobs"), " / ", data.title);
  const offset = Number(params.get("offset") ?? 0);
  const go = hashNavigator(base, params);
  const tools = toolbar(params, go, "search the rows");
  const table = el(
    "table",
    { class: "rows input" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { class: "num" }, "#"),
        el("th", {}, "state"),
        data.columns.map((c) => el("th", {}, c)),
      ),
    ),
    el(
      "tbody",
      {},
      data.rows.map((row) =>
        el(
          "tr",
          { "data-row": row.n, class: row.problem ? "corrupt" : undefined },
          el("td", { class: "num" }, String(row.n + 1)),
          el(
            "td",
            { title: row.detail },
            badge(row.state, KINDS[row.state] ?? ""),
            el("span", { class: "muted" }, ` ${row.problem ?? row.detail}`),
          ),
          data.columns.map((c) => {
            const text = cellText(row.fields[c]);
            return el("td", { title: text.length > 60 ? text.slice(0, 2000) : undefined }, text);
          }),
        )
      ),
    ),
  );
  const pager = pageButtons(
    offset,
    data.rows.length,
    data.matched,
    data.matched !== data.indexed,
    go,
  );
  show(
    el("h1", {}, data.title),
    el(
      "p",
      { class: "notice pending-banner" },
      `Job ${data.job.id} is not merged yet (${data.job.status}): these are its input rows and where `,
      `each stands. The answers go into ${data.job.output} when the job is fetched and merged.`,
    ),
    data.inputChanged
      ? el(
        "p",
        { class: "notice bad" },
        "The input file's size changed since the job was submitted: rows are matched by position, so these may not be the rows that were sent.",
      )
      : "",
    data.stopped ? el("p", { class: "notice bad" }, `Reading stopped: ${data.stopped}`) : "",
    tools,
    rowsTable(table, data.rows.length),
    pager,
  );
  live.textContent = data.indexing ? "indexing the file…" : "";
  if (data.indexing) again(() => inputView(id, params, crumbs, live, mine), 1000);
}
