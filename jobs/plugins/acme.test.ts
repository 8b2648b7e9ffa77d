/**
 * The example plugin passes the suites a third-party plugin would run: its `tsv` format the
 * format conformance suite, and its offline `acme` provider answers as the README says.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatConformance } from "../../core/testing/format-conformance.ts";
import plugins, { acme, tsv } from "./acme.ts";

const context = { env: {}, home: "/nonexistent" };
const format = await tsv.create({}, context);

/** The escapes the format writes: a backslash, tab, line feed or carriage return in a value. */
const escape = (value: string) =>
  value.replace(
    /[\\\t\n\r]/g,
    (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]!,
  );

formatConformance({
  format,
  sample: (rows, columns) =>
    [columns, ...rows.map((row) => columns.map((c) => row[c]))]
      .map((cells) => cells.map(escape).join("\t") + "\n").join(""),
  malformed: ["a\tb\n1\t2\t3\n", "a\tb\n1\n", "a\ta\n1\t2\n", "a\t\n1\t2\n", "a\tb\n1\tx\\q\n"],
});

describe("acme plugin module", () => {
  it("default-exports both plugins", () => {
    assert.deepEqual(plugins.map((p) => `${p.kind}:${p.name}`), ["provider:acme", "format:tsv"]);
  });

  it("answers with the prompt in capitals, after its prefix", async () => {
    const provider = await acme.create({ prefix: "HEY" }, context);
    const answer = await provider.generate({
      model: "m",
      messages: [{ role: "user", content: "Zoë says hi" }],
      params: {},
    });
    assert.equal(answer.text, "HEY: ZOË SAYS HI");
    assert.deepEqual(provider.cacheIdentity, { prefix: "HEY" });
  });
});
