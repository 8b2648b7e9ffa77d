/** Loom's rewrite of an answer schema for Anthropic structured outputs. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkOutputSchema } from "../../../emulator/providers/anthropic/schema.ts";
import { countTokensBody, messagesBody } from "./request.ts";
import { anthropicSchema } from "./schema.ts";

/** What the strict emulator says of a schema: nothing when the API would take it. */
function refusal(schema: Record<string, unknown>): string | undefined {
  try {
    checkOutputSchema(schema, "schema");
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

describe("anthropicSchema", () => {
  it("turns type lists and oneOf into anyOf, keeps local $refs and $defs, closes objects inside them", () => {
    const schema = {
      type: "object",
      properties: {
        note: { type: ["string", "null"], maxLength: 9, description: "A note." },
        pick: { oneOf: [{ $ref: "#/$defs/point" }, { type: "string", format: "uuid" }] },
        level: { enum: ["low", "high"] },
      },
      $defs: { point: { type: "object", properties: { x: { type: "number", multipleOf: 0.5 } } } },
    };
    const { schema: sent, problems } = anthropicSchema(schema);
    assert.deepEqual(problems, []);
    assert.deepEqual(sent, {
      $defs: {
        point: {
          type: "object",
          properties: { x: { type: "number", description: '{"multipleOf":0.5}' } },
          additionalProperties: false,
        },
      },
      type: "object",
      properties: {
        note: {
          description: "A note.",
          anyOf: [{ type: "string", description: '{"maxLength":9}' }, {
            type: "null",
            description: '{"maxLength":9}',
          }],
        },
        pick: { anyOf: [{ $ref: "#/$defs/point" }, { type: "string", format: "uuid" }] },
        level: { enum: ["low", "high"] },
      },
      additionalProperties: false,
    });
    assert.equal(refusal(sent), undefined, "the strict emulator takes what Loom sends");
    assert.match(
      refusal(schema) ?? "",
      /additionalProperties/,
      "and refuses the schema as the job gives it",
    );
    assert.equal(anthropicSchema(schema), anthropicSchema(schema), "rewritten once per schema");
  });

  it("names each place it cannot send", () => {
    const { problems } = anthropicSchema({
      type: "object",
      properties: {
        any: {},
        tuple: { type: "array", items: [{ type: "string" }] },
        kinds: { enum: [{ a: 1 }] },
        far: { $ref: "https://example.com/s.json" },
        tree: { $ref: "#/$defs/node" },
        bag: { type: "object" },
      },
      $defs: {
        node: {
          type: "object",
          properties: { kids: { type: "array", items: { $ref: "#/$defs/node" } } },
        },
      },
    });
    assert.equal(problems.length, 6, problems.join("\n"));
    assert.match(problems[0], /^properties\.any: a node without a type/);
    assert.match(problems[1], /^properties\.tuple: items as a list/);
    assert.match(problems[2], /^properties\.kinds: enum values must be/);
    assert.match(
      problems[3],
      /^properties\.far: \$ref "https:\/\/example\.com\/s\.json" is not a local reference/,
    );
    assert.match(problems[4], /^properties\.bag: an object without properties could only be \{\}/);
    assert.match(problems[5], /recursive \(\$ref "#\/\$defs\/node"/);
  });

  it("is what sync calls, batch requests and count_tokens all send", () => {
    const responseSchema = {
      type: "object",
      properties: { n: { type: "integer", minimum: 0 } },
      required: ["n"],
    };
    const request = {
      model: "m",
      messages: [{ role: "user" as const, content: "u" }],
      params: {},
      responseSchema,
    };
    const expected = { type: "json_schema", schema: anthropicSchema(responseSchema).schema };
    assert.deepEqual((messagesBody(request).output_config as { format: unknown }).format, expected);
    assert.deepEqual(
      (countTokensBody(request).output_config as { format: unknown }).format,
      expected,
    );
    assert.deepEqual(expected.schema, {
      type: "object",
      properties: { n: { type: "integer", description: '{"minimum":0}' } },
      additionalProperties: false,
      required: ["n"],
    });
  });
});
