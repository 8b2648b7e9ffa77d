// loom view's sync runs: their section of the jobs page, the tokens and cost cells batch jobs
// share with them, and one run's page (#/runs/ID/about) with its answers per minute.

import { again, age, api, badge, bar, currentDrawing, el, fmt, money, show } from "./dom.js";
import { barChart } from "./charts.js";

/** Columns drawn at most: a longer run's minutes are summed in spans of several. */
const MAX_COLUMNS = 120;

/** The run's answers per minute as columns (summed per span of minutes when the run was long). */
function perMinuteChart(perMinute) {
  const span = Math.max(1, Math.ceil(perMinute.length / MAX_COLUMNS));
  const bars = [];
  for (let i = 0; i < perMinute.length; i += span) {
    const last = Math.min(i + span, perMinute.length);
    bars.push({
      label: last === i + 1 ? `minute ${last}` : `minutes ${i + 1}–${last}`,
      tick: String(i + 1),
      value: perMinute.slice(i, last).reduce((sum, n) => sum + n, 0),
    });
  }
  return barChart({
    title: span === 1 ? "Answers per minute" : `Answers per ${span} minutes`,
    bars,
    unit: "answers",
    xLabel: "minute of the run",
    vertical: true,
  });
}

/** A record's input → output tokens, or a dash before there are any. */
export function tokensCell(r) {
  return el(
    "td",
    { class: "num tokens", title: "input → output tokens" },
    r.inputTokens === null ? "–" : `${fmt(r.inputTokens)} → ${fmt(r.outputTokens)}`,
  );
}

/** What the provider reported it cost, and under it the estimate (with where its price came from). */
export function costCell(r) {
  return el(
    "td",
    { class: "num cost" },
    el("span", { class: "actual", title: "reported by the provider" }, money(r.cost)),
    r.estimate
      ? el(
        "div",
        { class: "muted estimate", title: `estimated before the run, price: ${r.estimate.price}` },
        `est. ${money(r.estimate.cost)}`,
      )
      : "",
  );
}

/** The jobs page's "Sync runs" section. */
export function runsSection(runs) {
  const parts = [el("h2", {}, "Sync runs")];
  if (!runs.length) {
    parts.push(el("p", { class: "muted" }, "No sync runs recorded in this store."));
    return parts;
  }
  const head = [
    "Run",
    "Provider / model",
    "Status",
    "Progress",
    "Answered",
    "Failed",
    "Tokens",
    "Cost",
    "Age",
    "Output",
  ];
  parts.push(
    el(
      "table",
      { class: "runs" },
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, runs.map(runRow)),
    ),
  );
  return parts;
}

function runRow(run) {
  const done = run.answered + run.failed;
  return el(
    "tr",
    { "data-run": run.id },
    el(
      "td",
      {},
      el("a", { href: `#/runs/${run.id}/about` }, el("strong", {}, run.id)),
      el("div", { class: "muted" }, run.input),
    ),
    el("td", {}, `${run.provider} / ${run.model}`),
    el("td", { title: run.error ?? undefined }, badge(run.status)),
    el(
      "td",
      {},
      bar(done, run.rows),
      " ",
      el("span", { class: "muted" }, `${fmt(done)}/${fmt(run.rows)}`),
    ),
    el(
      "td",
      { class: "num" },
      fmt(run.answered),
      run.cached ? el("div", { class: "muted" }, `${fmt(run.cached)} cached`) : "",
    ),
    el("td", { class: "num" }, fmt(run.failed)),
    tokensCell(run),
    costCell(run),
    el("td", { title: run.startedAt }, age(run.startedAt)),
    el("td", {}, outputLink(run)),
  );
}

function outputLink(run) {
  if (run.outputReady) return el("a", { href: `#/runs/${run.id}` }, "rows →");
  return el("span", { class: "muted" }, run.active ? "written at the end" : "no output");
}

/** One run's page: its figures and its answers per minute, refreshed while it runs. */
export async function runView(id, mine = currentDrawing()) {
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  if (mine !== currentDrawing()) return;
  document.getElementById("crumbs").replaceChildren(
    el("a", { href: "#/" }, "jobs"),
    ` / run ${run.id}`,
  );
  const figures = [
    ["status", run.status],
    ["provider / model", `${run.provider} / ${run.model}`],
    ["input", run.input],
    ["output", run.output],
    ["host", run.host],
    ["started", run.startedAt],
    ["ended", run.endedAt ?? "–"],
    ["rows", fmt(run.rows)],
    ["answered", `${fmt(run.answered)} (${fmt(run.cached)} from the cache)`],
    ["failed", fmt(run.failed)],
    ["tokens in → out", `${fmt(run.inputTokens)} → ${fmt(run.outputTokens)}`],
    ["cost reported", money(run.cost)],
    [
      "cost estimated",
      run.estimate ? `${money(run.estimate.cost)} (price: ${run.estimate.price})` : "–",
    ],
  ];
  if (run.error) figures.push(["error", run.error]);
  show(
    el("h1", {}, `Run ${run.id} `, badge(run.status)),
    run.outputReady ? el("p", {}, el("a", { href: `#/runs/${run.id}` }, "its rows →")) : "",
    el("dl", { class: "row" }, figures.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    perMinuteChart(run.perMinute),
  );
  document.getElementById("live").textContent = run.active
    ? "refreshing every 3 s while it runs"
    : "";
  if (run.active) again(() => runView(id, mine), 3000);
}
