import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildRequest, promptColumns } from "./request.ts";

describe("buildRequest", () => {
  it("takes the prompt from the `prompt` column by default", () => {
    const built = buildRequest({ model: "m" }, { id: "1", prompt: "hi" });
    assert.deepEqual(built, {
      request: { model: "m", messages: [{ role: "user", content: "hi" }], params: {} },
    });
  });

  it("renders a template and a system prompt from the row, and passes params", () => {
    const built = buildRequest(
      {
        model: "m",
        prompt: { template: "Summarize {{ topic }}:\n{{text}}", system: "Write in {{lang}}." },
        params: { temperature: 0 },
      },
      { topic: "rain", text: "It rains.", lang: "French" },
    );
    assert.deepEqual(built, {
      request: {
        model: "m",
        system: "Write in French.",
        messages: [{ role: "user", content: "Summarize rain:\nIt rains." }],
        params: { temperature: 0 },
      },
    });
  });

  it("makes a row error, not a request, for an empty prompt or a missing field", () => {
    assert.deepEqual(buildRequest({ model: "m", prompt: { column: "text" } }, { text: "  " }), {
      error: "empty prompt: nothing was sent",
    });
    assert.deepEqual(
      buildRequest({ model: "m", prompt: { template: "{{a}} {{b}}" } }, { a: "x" }),
      {
        error: 'row has no "b" field',
      },
    );
  });

  it("renders non-string values as text", () => {
    const built = buildRequest({ model: "m", prompt: { column: "n" } }, { n: 42 });
    assert.equal("request" in built && built.request.messages[0].content, "42");
  });

  it("lists the columns a prompt uses", () => {
    assert.deepEqual(promptColumns(undefined), ["prompt"]);
    assert.deepEqual(promptColumns({ template: "{{a}}{{b}}{{a}}", system: "{{c}}" }), [
      "a",
      "b",
      "c",
    ]);
  });
});
