// loom view's pictures of one output, above its rows: how its input and output tokens are spread,
// its failed rows by kind of error (a bar leads to those rows), and a batch job's cost per batch.
// Folded by default; whether it is open is kept for the tab.

import { api, currentDrawing, el, fmt, money } from "./dom.js";
import { barChart, histogram } from "./charts.js";

const OPEN = "loom-view-charts";

/**
 * The charts panel of the rows of `base` (`/files/N` or `/jobs/ID`) for the drawing `mine`, and
 * above it, when the rows are of one kind of error (`?kind=`), a way back to all of them.
 */
export function picturesPanel(base, params, mine) {
  const body = el("div", { class: "charts-body" }, el("p", { class: "muted" }, "Loading…"));
  const panel = el("details", { class: "charts" }, el("summary", {}, "Charts"), body);
  let loaded = false;
  const load = () => {
    loaded = true;
    drawStats(base, params, body, mine).catch((error) => {
      body.replaceChildren(el("p", { class: "notice bad" }, String(error.message ?? error)));
    });
  };
  panel.addEventListener("toggle", () => {
    sessionStorage.setItem(OPEN, panel.open ? "1" : "");
    if (panel.open && !loaded) load();
  });
  if (sessionStorage.getItem(OPEN) === "1") panel.open = true;
  const kind = params.get("kind");
  if (!kind) return panel;
  const all = new URLSearchParams(params);
  all.delete("kind");
  all.delete("offset");
  return el(
    "div",
    {},
    el(
      "p",
      { class: "notice kind-filter" },
      "Only the rows whose error is of the kind ",
      el("strong", {}, kind),
      ". ",
      el("a", { href: `#${base}${all.size ? `?${all}` : ""}` }, "show all rows"),
    ),
    panel,
  );
}

async function drawStats(base, params, body, mine) {
  const stats = await api(`/api${base}/stats`);
  if (mine !== currentDrawing()) return;
  const { inputTokens: input, outputTokens: output } = stats;
  const totals = [
    `${fmt(stats.indexed)} rows`,
    `${fmt(input.sum)} input tokens`,
    `${fmt(output.sum)} output tokens`,
    stats.cost.total === null
      ? "no cost reported"
      : `cost ${money(stats.cost.total)} (${fmt(stats.cost.rows)} rows)`,
  ];
  const parts = [
    el(
      "p",
      { class: "chart-totals" },
      totals.join(" · "),
      stats.indexing ? el("span", { class: "muted" }, " — indexing, the rows read so far") : "",
    ),
  ];
  const grid = el("div", { class: "chart-grid" });
  grid.append(tokens("Input tokens per row", input, "input tokens"));
  grid.append(tokens("Output tokens per row", output, "output tokens"));
  grid.append(errors(base, params, stats.errors));
  if (stats.shards) grid.append(shards(stats.shards));
  parts.push(grid);
  body.replaceChildren(...parts);
}

function tokens(title, d, what) {
  if (!d.count) {
    return el(
      "figure",
      { class: "chart" },
      el("figcaption", {}, title),
      el("p", { class: "muted" }, `No row has ${what}.`),
    );
  }
  const summary =
    `${fmt(d.count)} rows: median ${fmt(d.p50)}, p90 ${fmt(d.p90)}, p99 ${fmt(d.p99)}, ` +
    `max ${fmt(d.max)} ${what}`;
  return histogram({ title, bins: d.bins, unit: "rows", xLabel: what, summary });
}

function errors(base, params, kinds) {
  if (!kinds.length) {
    return el(
      "figure",
      { class: "chart" },
      el("figcaption", {}, "Errors by kind"),
      el("p", { class: "muted" }, "No row failed."),
    );
  }
  const bars = kinds.map(({ kind, count }) => {
    const only = new URLSearchParams(params);
    only.delete("offset");
    only.set("kind", kind);
    return {
      label: kind,
      value: count,
      hint: `${kind}: ${fmt(count)} rows (click to see them)`,
      href: `#${base}?${only}`,
    };
  });
  return barChart({
    title: "Errors by kind",
    bars,
    unit: "rows",
    xLabel: "failed rows (a bar shows its rows)",
  });
}

/** Cost per batch when the provider reported any; else the tokens, which every provider reports. */
function shards(list) {
  if (list.some((s) => s.cost !== null)) {
    return barChart({
      title: "Cost per batch",
      bars: list.map((s) => ({
        label: `batch ${s.n}`,
        value: s.cost ?? 0,
        hint: `batch ${s.n}: ${s.cost === null ? "no cost recorded" : money(s.cost)}, ${
          fmt(s.requests)
        } requests`,
      })),
      format: money,
      xLabel: "US dollars, as the provider reported",
    });
  }
  return barChart({
    title: "Tokens per batch",
    bars: list.map((s) => ({
      label: `batch ${s.n}`,
      value: (s.inputTokens ?? 0) + (s.outputTokens ?? 0),
      hint: s.inputTokens === null && s.outputTokens === null
        ? `batch ${s.n}: no usage recorded`
        : `batch ${s.n}: ${fmt(s.inputTokens)} in, ${fmt(s.outputTokens)} out`,
    })),
    unit: "tokens",
    xLabel: "input and output tokens (the provider reported no cost)",
  });
}
