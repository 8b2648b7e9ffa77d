// loom view's charts: bar charts and histograms drawn as SVG by hand (createElementNS, values as
// text), each in a <figure> with its title, a value on hover (<title>) and a text summary for
// those who do not see the picture. Shared by every view that draws one.

import { el, fmt } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
/** The drawing's width in SVG units; CSS scales it to the page. */
const WIDTH = 480;

/** An SVG element with attributes and children (strings become text). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

/** A bar: a link when it has `href` (a keyboard reaches it too), its hint on hover. */
function barNode(rect, bar, text) {
  const hint = svg("title", {}, bar.hint ?? text);
  const group = bar.href
    ? svg("a", { href: bar.href, class: "bar-link", "aria-label": text }, rect, hint)
    : svg("g", {}, rect, hint);
  group.setAttribute("data-label", bar.label);
  return group;
}

/** The <figure> around a drawing: the title, the picture, and the summary in words. */
function figure(title, drawing, summary, extra = "") {
  drawing.setAttribute("role", "img");
  drawing.setAttribute("aria-label", summary);
  return el(
    "figure",
    { class: `chart ${extra}` },
    el("figcaption", {}, title),
    drawing,
    el("p", { class: "chart-summary muted" }, summary),
  );
}

/** The shown value: `format(v)` when given, else the number with its unit. */
function shown(value, unit, format) {
  if (format) return format(value);
  // Units are plural nouns (rows, tokens, answers): one of them is said in the singular.
  const said = value === 1 && unit.endsWith("s") ? unit.slice(0, -1) : unit;
  return `${fmt(value)}${said ? ` ${said}` : ""}`;
}

/**
 * A bar chart of named values, in a <figure>.
 * - `bars`: `[{ label, value, hint?, href?, tick? }]`, drawn in this order; `hint` is shown on hover
 *   (else the label and value), `href` makes the bar a link, `tick` is said under a column
 *   instead of its label.
 * - `unit`: said after each value (`rows`); `format(value)` instead, for money say.
 * - `xLabel`: what the values are, under the axis.
 * - `vertical`: columns (a time series) rather than rows of bars (named things).
 * - `summary`: the text said instead of the picture (else the bars, in words).
 */
export function barChart(
  { title, bars, unit = "", xLabel = "", vertical = false, format, summary },
) {
  const max = Math.max(0, ...bars.map((b) => b.value));
  const said = (b) => `${b.label}: ${shown(b.value, unit, format)}`;
  const words = summary ??
    (bars.length
      ? `${bars.slice(0, 12).map(said).join("; ")}${
        bars.length > 12 ? `; and ${bars.length - 12} more` : ""
      }`
      : "nothing to show");
  const drawing = vertical
    ? columns(bars.map((b) => ({ ...b, text: said(b) })), max, xLabel, format)
    : rows(bars.map((b) => ({ ...b, text: said(b) })), max, xLabel, unit, format);
  return figure(title, drawing, words, vertical ? "vertical" : "horizontal");
}

/** Horizontal bars: a label on the left of each, its value after it. */
function rows(bars, max, xLabel, unit, format) {
  const left = 150;
  const right = 90;
  const row = 22;
  const top = 4;
  const plot = WIDTH - left - right;
  const height = top + bars.length * row + (xLabel ? 22 : 6);
  const nodes = bars.map((b, i) => {
    const y = top + i * row;
    const w = max > 0 ? Math.max(b.value > 0 ? 1 : 0, (plot * b.value) / max) : 0;
    const label = b.label.length > 22 ? `${b.label.slice(0, 21)}…` : b.label;
    return svg(
      "g",
      {},
      svg("text", { x: left - 6, y: y + 15, "text-anchor": "end", class: "label" }, label),
      barNode(
        svg("rect", { x: left, y: y + 3, width: w, height: row - 6, class: "chart-bar" }),
        b,
        b.text,
      ),
      svg("text", { x: left + w + 4, y: y + 15, class: "value" }, shown(b.value, unit, format)),
    );
  });
  return svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height },
    svg("line", { x1: left, x2: left, y1: top, y2: top + bars.length * row, class: "axis" }),
    nodes,
    xLabel ? svg("text", { x: left, y: height - 6, class: "axis-label" }, xLabel) : null,
  );
}

/** Columns over an x axis: a few of the labels under it, the largest value on the y axis. */
function columns(bars, max, xLabel, format) {
  const left = 56;
  const right = 8;
  const top = 10;
  const plotHeight = 140;
  const height = top + plotHeight + 22 + (xLabel ? 20 : 4);
  const plot = WIDTH - left - right;
  // Few columns stay narrow (a one-minute run is not one wide block).
  const step = bars.length ? Math.min(plot / bars.length, 48) : plot;
  const base = top + plotHeight;
  // Every k-th label, so that they do not run into one another.
  const every = Math.max(1, Math.ceil(bars.length / 6));
  const nodes = bars.map((b, i) => {
    const h = max > 0 ? Math.max(b.value > 0 ? 1 : 0, (plotHeight * b.value) / max) : 0;
    const x = left + i * step;
    return svg(
      "g",
      {},
      barNode(
        svg("rect", {
          x: x + 1,
          y: base - h,
          width: Math.max(1, step - 2),
          height: h,
          class: "chart-bar",
        }),
        b,
        b.text,
      ),
      i % every === 0
        ? svg(
          "text",
          { x: x + step / 2, y: base + 14, "text-anchor": "middle", class: "label" },
          b.tick ?? b.label,
        )
        : null,
    );
  });
  return svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height },
    svg("line", { x1: left, x2: WIDTH - right, y1: base, y2: base, class: "axis" }),
    svg("line", { x1: left, x2: left, y1: top, y2: base, class: "axis" }),
    svg("line", { x1: left, x2: WIDTH - right, y1: top, y2: top, class: "grid" }),
    svg(
      "text",
      { x: left - 4, y: top + 4, "text-anchor": "end", class: "value" },
      shown(max, "", format),
    ),
    svg("text", { x: left - 4, y: base, "text-anchor": "end", class: "value" }, "0"),
    nodes,
    xLabel
      ? svg("text", {
        x: left + plot / 2,
        y: height - 4,
        "text-anchor": "middle",
        class: "axis-label",
      }, xLabel)
      : null,
  );
}

/**
 * A histogram, in a <figure>: `bins` `[{ from, to, count }]` (whole numbers from..to-1) as
 * columns, each bin's range under it; `xLabel` names what was counted (`output tokens`), `unit`
 * what a column counts (`rows`). `summary`: the text said instead of the picture.
 */
export function histogram({ title, bins, unit = "rows", xLabel = "", summary }) {
  const range = (b) => (b.to - b.from === 1 ? fmt(b.from) : `${fmt(b.from)}–${fmt(b.to - 1)}`);
  const bars = bins.map((b) => ({
    label: range(b),
    tick: fmt(b.from),
    value: b.count,
    hint: `${range(b)} ${xLabel}: ${fmt(b.count)} ${unit}`,
  }));
  const total = bins.reduce((n, b) => n + b.count, 0);
  const words = summary ??
    (bins.length
      ? `${fmt(total)} ${unit} from ${fmt(bins[0].from)} to ${fmt(bins.at(-1).to - 1)} ${xLabel}`
      : "nothing to show");
  return barChart({ title, bars, unit, xLabel, vertical: true, summary: words });
}
