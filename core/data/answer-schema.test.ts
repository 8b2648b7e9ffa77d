import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkPlainAnswer, loadAnswerSchema } from "./answer-schema.ts";
import { LoomJobError } from "../base/errors.ts";
import { loadJob } from "../job/load.ts";
import { tempDir } from "../test-support/temp.ts";

const REVIEW = {
  type: "object",
  properties: {
    label: { type: "string", enum: ["good", "bad"] },
    score: { type: "integer", minimum: 1, maximum: 5 },
  },
  required: ["label", "score"],
  additionalProperties: false,
};

/** Loads a job whose `schema:` line is `schemaYaml`, with extra files beside it. */
async function schemaOf(schemaYaml: string, files: Record<string, string> = {}) {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprovider: echo\nmodel: m\nschema: ${schemaYaml}\n`,
  );
  return loadAnswerSchema(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }));
}

/** The single job problem a load fails with. */
async function problem(schemaYaml: string, files: Record<string, string> = {}) {
  try {
    await schemaOf(schemaYaml, files);
  } catch (error) {
    assert.ok(error instanceof LoomJobError, String(error));
    assert.equal(error.issues.length, 1);
    return `${error.issues[0].where} ${error.issues[0].message}`;
  }
  assert.fail("the schema loaded");
}

describe("answer schema: loading", () => {
  it("takes an inline schema, a .json file or a .yaml file, and lists the fields in order", async () => {
    const inline = await schemaOf(JSON.stringify(REVIEW));
    assert.deepEqual(inline?.fields, ["label", "score"]);
    const json = await schemaOf("review.json", { "review.json": JSON.stringify(REVIEW, null, 2) });
    assert.deepEqual(json?.schema, REVIEW);
    const yaml = await schemaOf("review.yaml", {
      "review.yaml": "type: object\nproperties:\n  b: { type: string }\n  a: { type: number }\n",
    });
    assert.deepEqual(yaml?.fields, ["b", "a"]);
  });

  it("names the job line and the file when the schema cannot be used", async () => {
    assert.match(await problem("missing.json"), /^job\.yaml:4:9 \S*missing\.json does not exist/);
    assert.match(
      await problem("bad.json", { "bad.json": '{\n  "type": "object",\n}' }),
      /bad\.json is not valid JSON: .*(line 3|position)/,
    );
    assert.match(
      await problem("bad.yaml", { "bad.yaml": "type: object\ntype: object\n" }),
      /bad\.yaml:2:1: Map keys must be unique/,
    );
    assert.match(
      await problem("list.json", { "list.json": "[1]" }),
      /must hold a JSON Schema object/,
    );
    assert.match(
      await problem("{ type: array, items: { type: string } }"),
      /must be an object with named fields.*type "array".*wrap it in a field/,
    );
    assert.match(
      await problem("{ type: object, properties: { a: { type: 12 } } }"),
      /not a valid JSON Schema/,
    );
    assert.match(await problem("{ type: object }"), /must be an object with named fields/);
  });

  it("follows the draft the schema names", async () => {
    const draft7 = await schemaOf(
      JSON.stringify({
        $schema: "http://json-schema.org/draft-07/schema#",
        ...REVIEW,
        definitions: {},
      }),
    );
    assert.deepEqual(draft7?.check({ text: '{"label":"good","score":2}' }), {
      value: { label: "good", score: 2 },
    });
  });
});

describe("answer schema: checking answers", () => {
  it("parses a matching answer, also inside one Markdown fence", async () => {
    const schema = (await schemaOf(JSON.stringify(REVIEW)))!;
    assert.deepEqual(schema.check({ text: '{"label":"bad","score":1}' }), {
      value: { label: "bad", score: 1 },
    });
    assert.deepEqual(schema.check({ text: '```json\n{"label":"bad","score":1}\n```' }), {
      value: { label: "bad", score: 1 },
    });
  });

  it("turns every kind of bad answer into a row error that says what is wrong", async () => {
    const schema = (await schemaOf(JSON.stringify(REVIEW)))!;
    const error = (text: string, extra = {}) => {
      const verdict = schema.check({ text, ...extra });
      assert.ok("error" in verdict, `accepted ${text}`);
      return verdict.error;
    };
    assert.match(error('{"label":"good"'), /not valid JSON/);
    assert.match(
      error('{"label":"meh","score":9}'),
      /does not match the schema: \/label must be equal to one of the allowed values; \/score must be <= 5/,
    );
    assert.match(
      error('{"label":"good","score":1,"x":1,"y":2,"z":3,"w":4}'),
      /must NOT have additional properties.*\(and 1 more\)/,
    );
    assert.match(
      error('{"label":"good","score":3}', { truncated: true }),
      /cut off at max_tokens.*raise params\.max_tokens/,
    );
    assert.match(
      error("", { truncated: true, usage: { reasoningTokens: 10 } }),
      /spent all of max_tokens on reasoning \(10 tokens\)/,
    );
    assert.match(
      error("", { refusal: "I can't help with that." }),
      /refused to answer: I can't help with that\./,
    );
    assert.match(error("[1, 2]"), /must be object/);
  });

  it("an answer emptied by reasoning at max_tokens is an error that says to raise max_tokens", () => {
    const spent = {
      text: "",
      truncated: true,
      finishReason: "length",
      usage: { outputTokens: 64, reasoningTokens: 64 },
    };
    assert.deepEqual(checkPlainAnswer(spent), {
      error:
        "the model spent all of max_tokens on reasoning (64 tokens) before it answered, so the answer is empty; raise params.max_tokens",
    });
    assert.match(
      (checkPlainAnswer({ text: " ", truncated: true }) as { error: string }).error,
      /reached max_tokens before it answered/,
    );
    // A cut answer with text is still an answer without a schema (the finish reason says so).
    assert.equal(checkPlainAnswer({ text: "partial", truncated: true }), undefined);
  });

  it("without a schema, only an empty withheld or emptied answer is an error", () => {
    assert.equal(checkPlainAnswer({ text: "hello" }), undefined);
    assert.equal(checkPlainAnswer({ text: "I won't.", refusal: "I won't." }), undefined);
    assert.deepEqual(checkPlainAnswer({ text: "", refusal: "blocked (SAFETY)" }), {
      error: "the model gave no answer: blocked (SAFETY)",
    });
  });
});
