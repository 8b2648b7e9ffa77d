// loom view's page helpers, shared by its views: building elements, asking the server, drawing
// into <main>, and knowing which drawing is current. Every value from a file or the store goes in
// as text (textContent), never as HTML.

const main = document.getElementById("main");
let timer;

/** An element with attributes and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

export async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({
    error: `${response.status} ${response.statusText}`,
  }));
  if (!response.ok) throw new Error(body.error ?? `${response.status}`);
  return body;
}

export const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

export function age(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function badge(word, kind = word) {
  return el("span", { class: `badge ${String(kind).replace(/[^a-z_]/gi, "")}` }, word);
}

export function bar(done, total) {
  const fill = el("span");
  fill.style.width = `${total ? Math.round((100 * done) / total) : 0}%`;
  return el("span", { class: "bar", title: `${done} of ${total}` }, fill);
}

/** Which drawing is current: one that ends after the user moved on draws nothing. */
let drawing = 0;

/** Starts a new drawing (the user moved on) and returns its number. */
export function nextDrawing() {
  clearTimeout(timer);
  return ++drawing;
}

/** The number of the current drawing: a view compares it with its own before drawing. */
export function currentDrawing() {
  return drawing;
}

export function show(...nodes) {
  main.replaceChildren(...nodes);
}

export function failure(error) {
  show(el("p", { class: "notice bad", role: "alert" }, String(error.message ?? error)));
}

/** Calls `draw` again in `ms` while the same view is shown. */
export function again(draw, ms) {
  clearTimeout(timer);
  timer = setTimeout(() => draw().catch(failure), ms);
}

/** The shown value of a cell: text as it is, anything else as JSON. */
export function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

// ---- what the paged views share (rows, compare, a job's input rows) -------------------------

/** Rows a page shows. */
export const PAGE = 50;

/**
 * The function moving a paged view to new query `changes` (an empty value removes one) under the
 * address `hash` (`#/files/0`); any change but the offset's goes back to the first page.
 */
export function hashNavigator(hash, params) {
  return (changes) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === "" || v === false || v === undefined) next.delete(k);
      else next.set(k, String(v));
    }
    if (!("offset" in changes)) next.delete("offset");
    location.hash = `${hash}${next.size ? `?${next}` : ""}`;
  };
}

/** A toolbar form: its search box (`q`) searches on submit; `controls` come after its button. */
export function toolbar(params, go, placeholder, { before = [], after = [] } = {}) {
  const search = el("input", {
    type: "search",
    name: "q",
    placeholder,
    value: params.get("q") ?? "",
  });
  return el(
    "form",
    {
      class: "toolbar",
      onsubmit: (e) => {
        e.preventDefault();
        go({ q: search.value });
      },
    },
    before,
    search,
    el("button", { type: "submit" }, "Search"),
    after,
  );
}

/** A labelled checkbox setting query `name` to 1 or removing it. */
export function checkboxFilter(params, go, name, label) {
  return el(
    "label",
    {},
    el("input", {
      type: "checkbox",
      name,
      checked: params.get(name) === "1",
      onchange: (e) => go({ [name]: e.target.checked ? "1" : "" }),
    }),
    ` ${label}`,
  );
}

/** A page's table of rows, scrolling on its own when wide, or "No rows match." when it has none. */
export function rowsTable(table, count) {
  return count
    ? el("div", { class: "scroll" }, table)
    : el("p", { class: "muted empty" }, "No rows match.");
}

/**
 * Previous/next buttons and the range shown, for a page of `shown` rows from `offset` among
 * `matched` (rows `matching` a filter, when `filtered`).
 */
export function pageButtons(offset, shown, matched, filtered, go) {
  const first = matched ? offset + 1 : 0;
  const last = offset + shown;
  return el(
    "div",
    { class: "pager" },
    el("button", {
      type: "button",
      disabled: offset === 0,
      onclick: () => go({ offset: Math.max(0, offset - PAGE) || "" }),
    }, "← previous"),
    el(
      "span",
      { class: "range" },
      `rows ${fmt(first)}–${fmt(last)} of ${fmt(matched)}${filtered ? " matching" : ""}`,
    ),
    el("button", {
      type: "button",
      disabled: last >= matched,
      onclick: () => go({ offset: offset + PAGE }),
    }, "next →"),
  );
}

/**
 * Dollars for people: cents from a dollar up, more digits for the small sums of a few rows, as
 * the CLI words them (`usd` in core/commands/estimate.ts; the page has no build step to share it).
 */
export function money(amount) {
  if (amount === null || amount === undefined) return "–";
  const digits = amount >= 1 || amount === 0
    ? 2
    : amount >= 0.01
    ? 4
    : Math.min(20, Math.max(6, 1 - Math.floor(Math.log10(Math.abs(amount)))));
  return `$${amount.toFixed(digits)}`;
}
