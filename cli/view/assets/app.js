// loom view's page: its views behind the URL's hash (#/ jobs, #/files/N or #/jobs/ID rows,
// …/rows/K one row), drawn from the server's JSON with the helpers of dom.js.

import {
  again,
  age,
  api,
  badge,
  bar,
  cellText,
  checkboxFilter,
  currentDrawing,
  el,
  failure,
  fmt,
  hashNavigator,
  nextDrawing,
  PAGE,
  pageButtons,
  rowsTable,
  show,
  toolbar,
} from "./dom.js";
import { picturesPanel } from "./pictures.js";
import { compareOffer, compareRowView, compareView } from "./compare.js";
import { actionCell, actionNotice } from "./actions.js";
import { inputView } from "./input.js";
import { costCell, runsSection, runView, tokensCell } from "./runs.js";

const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");

// The token is in a cookie now: keep it out of the address bar, history and screenshots.
if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname + location.hash);
}

// ---- jobs -----------------------------------------------------------------------------------

async function jobsView(mine = currentDrawing()) {
  const data = await api("/api/jobs");
  if (mine !== currentDrawing()) return;
  crumbs.replaceChildren();
  const parts = [el("h1", {}, "Jobs"), el("p", { class: "muted" }, `state store: ${data.store}`)];
  for (const problem of data.problems) parts.push(el("p", { class: "notice bad" }, problem));
  if (data.actions) parts.push(actionNotice());
  if (data.files.length) {
    parts.push(el("h2", {}, "Output files"));
    parts.push(
      el(
        "ul",
        { class: "files" },
        data.files.map((f) =>
          el(
            "li",
            {},
            el("a", { href: `#/files/${f.n}` }, f.path),
            " ",
            el(
              "span",
              { class: "muted" },
              `${f.format}${f.size === null ? ", missing" : `, ${fmt(f.size)} bytes`}`,
            ),
          )
        ),
      ),
    );
  }
  parts.push(...compareOffer(data));
  parts.push(el("h2", {}, "Batch jobs"));
  if (!data.jobs.length) {
    parts.push(
      el(
        "p",
        { class: "muted" },
        "No batch jobs in this store (a job whose every row was answered is removed once merged).",
      ),
    );
  } else {
    const head = [
      "Job",
      "Provider / model",
      "Status",
      "Progress",
      "Answered",
      "Failed",
      "Rows",
      "Tokens",
      "Cost",
      "Age",
      "Output",
    ];
    if (data.actions) head.push("Actions");
    // A wide table (many batches, the actions column) scrolls on its own, not the page.
    parts.push(el(
      "div",
      { class: "scroll" },
      el(
        "table",
        { class: "jobs" },
        el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          data.jobs.map((job) => {
            const row = jobRow(job);
            if (data.actions) row.append(actionCell(job, route));
            return row;
          }),
        ),
      ),
    ));
  }
  parts.push(...runsSection(data.runs));
  show(...parts);
  const active = data.jobs.some((j) => j.active) || data.runs.some((r) => r.active);
  live.textContent = active ? "refreshing every 3 s while batches or runs go on" : "";
  if (active) again(() => jobsView(mine), 3000);
}

function jobRow(job) {
  const shards = el(
    "table",
    { class: "shards" },
    el(
      "tbody",
      {},
      job.shards.map((s) =>
        el(
          "tr",
          { title: s.meaning || undefined },
          el("td", {}, `batch ${s.n}`),
          el("td", {}, s.batch ?? "–"),
          el("td", {}, badge(s.phase, s.phase.replace(/ /g, "_"))),
          el(
            "td",
            {},
            s.state
              ? badge(s.providerState ? `${s.state} (${s.providerState})` : s.state, s.state)
              : "",
          ),
          el(
            "td",
            { class: "num" },
            `${fmt((s.succeeded ?? 0) + (s.failed ?? 0))}/${fmt(s.requests)}`,
          ),
          el("td", { class: "muted" }, s.message ?? ""),
        )
      ),
    ),
  );
  return el(
    "tr",
    { "data-job": job.id },
    el("td", {}, el("strong", {}, job.id), shards),
    el("td", {}, `${job.provider} / ${job.model}`),
    el("td", {}, badge(job.status, job.status.includes(" ") ? "" : job.status)),
    el(
      "td",
      {},
      bar(job.done, job.requests),
      " ",
      el("span", { class: "muted" }, `${fmt(job.done)}/${fmt(job.requests)}`),
    ),
    el("td", { class: "num" }, fmt(job.answered)),
    el("td", { class: "num" }, fmt(job.failed)),
    el("td", { class: "num" }, fmt(job.rows)),
    tokensCell(job),
    costCell(job),
    el("td", { title: job.createdAt }, age(job.createdAt)),
    el(
      "td",
      {},
      job.outputReady
        ? el("a", { href: `#/jobs/${job.id}` }, "rows →")
        : el("a", { href: `#/jobs/${job.id}/input` }, "not merged yet: input rows →"),
    ),
  );
}

// ---- rows -----------------------------------------------------------------------------------

const SORTS = [["row", "file order"], ["status", "status"], ["finish", "finish reason"], [
  "input_tokens",
  "input tokens",
], ["output_tokens", "output tokens"]];

/**
 * The cells of a structured answer, one per field; an answer that is not an object (the raw text
 * of one that failed its schema) spans them all, marked as such.
 */
function answerCells(answer, fields) {
  if (answer !== null && typeof answer === "object" && !Array.isArray(answer)) {
    return fields.map((f) => {
      const text = cellText(answer[f]);
      return el("td", {
        class: "answer-field",
        title: text.length > 60 ? text.slice(0, 2000) : undefined,
      }, text.slice(0, 300));
    });
  }
  const text = cellText(answer);
  return el("td", {
    colspan: fields.length,
    class: text ? "answer-raw" : undefined,
    title: text ? "not a structured answer: its raw text" : undefined,
  }, text.slice(0, 300));
}

async function rowsView(base, params, mine = currentDrawing()) {
  const query = new URLSearchParams(params);
  query.set("limit", String(PAGE));
  const data = await api(`/api${base}/rows?${query}`);
  if (mine !== currentDrawing()) return;
  crumbs.replaceChildren(el("a", { href: "#/" }, "jobs"), " / ", data.title);
  const offset = Number(params.get("offset") ?? 0);
  const go = hashNavigator(`#${base}`, params);
  const finish = el(
    "select",
    { name: "finish", onchange: () => go({ finish: finish.value }) },
    el("option", { value: "" }, "any finish reason"),
    data.finishReasons.map((f) =>
      el("option", { value: f, selected: params.get("finish") === f }, f)
    ),
  );
  if (params.has("finish") && !data.finishReasons.includes(params.get("finish"))) finish.value = "";
  const sort = el(
    "select",
    { name: "sort", onchange: () => go({ sort: sort.value === "row" ? "" : sort.value }) },
    SORTS.map(([v, label]) =>
      el("option", { value: v, selected: (params.get("sort") ?? "row") === v }, `sort: ${label}`)
    ),
  );
  const tools = toolbar(params, go, "search the rows", {
    before: [checkboxFilter(params, go, "failed", "failed only")],
    after: [
      finish,
      sort,
      el(
        "label",
        {},
        el("input", {
          type: "checkbox",
          name: "desc",
          checked: params.get("order") === "desc",
          onchange: (e) => go({ order: e.target.checked ? "desc" : "" }),
        }),
        " descending",
      ),
    ],
  });

  const { counts } = data;
  const summary = el(
    "p",
    { class: "summary" },
    `${fmt(data.indexed)} rows: `,
    badge(`${fmt(counts.ok)} answered`, "ok"),
    " ",
    badge(`${fmt(counts.error)} failed`, counts.error ? "error" : ""),
    " ",
    counts.corrupt ? badge(`${fmt(counts.corrupt)} corrupt`, "corrupt") : "",
    data.indexing ? el("span", { class: "muted" }, " — indexing…") : "",
  );

  const columns = data.columns;
  const fields = data.answerFields ?? [];
  // A job's rows carry the request each was sent (rebuilt from the job), a file's do not.
  const prompts = data.rows.some((r) => r.request);
  const table = el(
    "table",
    { class: "rows" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { class: "num" }, "#"),
        el("th", {}, "status"),
        prompts ? el("th", {}, "prompt") : "",
        columns.map((c) =>
          c === "llm_response" && fields.length
            ? fields.map((f) =>
              el(
                "th",
                { class: "answer-field", title: "a field of the structured answer" },
                `${c}.${f}`,
              )
            )
            : el("th", {}, c)
        ),
      ),
    ),
    el(
      "tbody",
      {},
      data.rows.map((row) =>
        el(
          "tr",
          {
            class: row.status,
            "data-row": row.n,
            onclick: () => {
              location.hash = `#${base}/rows/${row.n}`;
            },
          },
          el(
            "td",
            { class: "num" },
            el("a", { href: `#${base}/rows/${row.n}` }, String(row.n + 1)),
          ),
          el(
            "td",
            {},
            badge(row.status),
            row.problem ? el("span", { class: "muted" }, ` ${row.problem}`) : "",
          ),
          prompts ? promptCell(row.request) : "",
          columns.map((c) => {
            if (c === "llm_response" && fields.length) return answerCells(row.fields[c], fields);
            const text = cellText(row.fields[c]);
            return el("td", {
              class: `cell-${c.replace(/[^\w-]/g, "_")}`,
              title: text.length > 60 ? text.slice(0, 2000) : undefined,
            }, text.slice(0, 300));
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
  const parts = [el("h1", {}, data.title), summary, tools];
  if (data.stopped) {
    parts.push(
      el("p", { class: "notice bad" }, `Reading stopped at a corrupt place: ${data.stopped}`),
    );
  }
  parts.push(picturesPanel(base, params, mine));
  parts.push(
    rowsTable(table, data.rows.length),
    pager,
  );
  show(...parts);
  live.textContent = data.indexing ? "indexing the file…" : "";
  if (data.indexing) again(() => rowsView(base, params, mine), 1000);
}

/** The rendered prompt of a row in the table, or why it was never sent. */
function promptCell(request) {
  if (!request) return el("td");
  if (request.error) return el("td", { class: "muted" }, request.error);
  const text = request.prompt;
  return el("td", {
    class: "prompt",
    title: text.length > 60 ? text.slice(0, 2000) : undefined,
  }, text.slice(0, 300));
}

/** A row's request, whole: what the job sent for it (a job's rows only). */
function requestSection(request) {
  if (!request) return [];
  if (request.error) {
    return [el("h2", {}, "Request"), el("p", { class: "muted" }, `Never sent: ${request.error}`)];
  }
  const items = [["model", request.model]];
  if (request.system !== undefined) items.push(["system", request.system]);
  items.push(["prompt", request.prompt]);
  if (Object.keys(request.params).length) {
    items.push(["params", JSON.stringify(request.params, null, 2)]);
  }
  if (request.schema) items.push(["answer schema", "yes: the job's schema (see its job file)"]);
  return [
    el("h2", {}, "Request"),
    el(
      "dl",
      { class: "request" },
      items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
    ),
    el("h2", {}, "Row"),
  ];
}

async function rowView(base, n, mine = currentDrawing()) {
  const data = await api(`/api${base}/rows/${n}`);
  if (mine !== currentDrawing()) return;
  const { row } = data;
  crumbs.replaceChildren(
    el("a", { href: "#/" }, "jobs"),
    " / ",
    el("a", { href: `#${base}` }, data.title),
    ` / row ${row.n + 1}`,
  );
  const items = [];
  for (const [k, v] of Object.entries(row.fields)) {
    const text = v !== null && typeof v === "object" ? JSON.stringify(v, null, 2) : cellText(v);
    items.push(
      el("dt", {}, k),
      el("dd", { class: k === "llm_error" && v ? "error" : undefined }, text),
    );
  }
  show(
    el("h1", {}, `Row ${row.n + 1} `, badge(row.status)),
    row.problem ? el("p", { class: "notice bad" }, `This row is corrupt: ${row.problem}`) : "",
    el(
      "p",
      {},
      el("a", { href: `#${base}` }, "← back to the rows"),
      " ",
      row.n > 0 ? el("a", { href: `#${base}/rows/${row.n - 1}` }, "previous row") : "",
      " ",
      el("a", { href: `#${base}/rows/${row.n + 1}` }, "next row"),
    ),
    ...requestSection(row.request),
    el("dl", { class: "row" }, items),
  );
  live.textContent = "";
}

// ---- routing --------------------------------------------------------------------------------

/** Draws the page the address names; resolves once it is drawn (or its failure shown). */
function route() {
  const mine = nextDrawing();
  const [path, search = ""] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(search);
  const m = /^\/(files\/\d+|(?:jobs|runs)\/[A-Za-z0-9_-]+)(?:\/rows\/(\d+))?$/.exec(path);
  const side = "(?:files\\/\\d+|(?:jobs|runs)\\/[A-Za-z0-9_-]+)";
  const c = new RegExp(`^\\/compare\\/(${side}\\/${side})(?:\\/rows\\/(\\d+))?$`).exec(path);
  const input = /^\/jobs\/([A-Za-z0-9_-]+)\/input$/.exec(path);
  const about = /^\/runs\/([A-Za-z0-9_-]+)\/about$/.exec(path);
  const drawn = about
    ? runView(about[1])
    : c
    ? c[2] !== undefined ? compareRowView(c[1], Number(c[2])) : compareView(c[1], params)
    : input
    ? inputView(input[1], params, crumbs, live)
    : !m
    ? jobsView()
    : m[2] !== undefined
    ? rowView(`/${m[1]}`, Number(m[2]))
    : rowsView(`/${m[1]}`, params);
  return drawn.catch((error) => mine === currentDrawing() && failure(error));
}

addEventListener("hashchange", route);
route();
