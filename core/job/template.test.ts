import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findColumnsInTemplate, renderTemplate } from "./template.ts";

describe("findColumnsInTemplate", () => {
  it("lists each column once, trimmed, in order of first use", () => {
    assert.deepEqual(findColumnsInTemplate("{{title}}: {{ body }} ({{title}})"), ["title", "body"]);
  });
  it("accepts names with spaces and dots", () => {
    assert.deepEqual(findColumnsInTemplate("{{ first name }} {{meta.title}}"), [
      "first name",
      "meta.title",
    ]);
  });
  it("ignores unclosed and empty placeholders", () => {
    assert.deepEqual(findColumnsInTemplate("a {{ b and {{ }} and {{}}"), []);
    assert.deepEqual(findColumnsInTemplate("no placeholders"), []);
  });
});

describe("renderTemplate", () => {
  it("replaces placeholders with or without inner spaces", () => {
    assert.equal(
      renderTemplate("Summarise {{text}} in {{ n }} words.", { text: "the doc", n: 20 }),
      "Summarise the doc in 20 words.",
    );
  });
  it("turns values into text", () => {
    const fields = {
      s: "x",
      n: 1.5,
      t: true,
      f: false,
      z: null,
      u: undefined,
      o: { a: 1 },
      l: [1, "b"],
    };
    assert.equal(
      renderTemplate("{{s}}|{{n}}|{{t}}|{{f}}|{{z}}|{{u}}|{{o}}|{{l}}", fields),
      'x|1.5|true|false|||{"a":1}|[1,"b"]',
    );
  });
  it("leaves unclosed braces as literal text and missing columns empty", () => {
    assert.equal(renderTemplate("{{ a }} {{ b", { a: "A" }), "A {{ b");
    assert.equal(renderTemplate("[{{missing}}]", {}), "[]");
    assert.equal(renderTemplate("[{{constructor}}]", {}), "[]");
  });
  it("uses names with spaces and dots as they are", () => {
    assert.equal(
      renderTemplate("{{ first name }}/{{meta.title}}", { "first name": "Ada", "meta.title": "T" }),
      "Ada/T",
    );
  });
  it("does not expand placeholders inside values", () => {
    assert.equal(renderTemplate("{{a}}", { a: "{{b}}", b: "no" }), "{{b}}");
  });
});
