/**
 * Prompt templates.
 *
 * Syntax: `{{name}}` or `{{ name }}` is replaced by the row's value of column `name`. The name is
 * any run of characters other than `{` and `}`, with surrounding whitespace trimmed, so column
 * names with spaces or dots work (`{{ first name }}`, `{{meta.title}}`). Values become text:
 * strings as is, numbers and booleans via `String()`, `null`/`undefined` as `""`, objects and
 * arrays as JSON. (A row that lacks a named column entirely is never rendered: the request
 * builder fails that row instead of sending a prompt with a hole in it.) A `{{` without a closing `}}` (or `{{ }}` with no name) is literal
 * text. Replacement is a single pass: braces inside a substituted value are not expanded again.
 * @module
 */

// One placeholder: `{{`, a name without braces, `}}`. Global, so always use it via replace/matchAll.
const PLACEHOLDER = /\{\{([^{}]+)\}\}/g;

/** Column names used by a template, trimmed, each once, in order of first use. */
export function findColumnsInTemplate(template: string): string[] {
  const names = new Set<string>();
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1].trim();
    if (name !== "") names.add(name);
  }
  return [...names];
}

/** Fills a template's `{{column}}` placeholders with a row's values (see the module doc). */
export function renderTemplate(template: string, fields: Record<string, unknown>): string {
  return template.replace(PLACEHOLDER, (whole, raw: string) => {
    const name = raw.trim();
    if (name === "") return whole;
    // Own properties only: a column named "constructor" must not pick up Object.prototype's.
    return Object.hasOwn(fields, name) ? toText(fields[name]) : "";
  });
}

function toText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
