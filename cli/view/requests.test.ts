/**
 * A job's requests as the viewer shows them: rebuilt from the job's spec by Loom's own request
 * builder (template, system prompt, params), a row that was never sent said so, the page's prompt
 * cut and the detail's whole.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JobRecord } from "../../core/batch/store.ts";
import { requestsOf } from "./requests.ts";

/** A job record holding only what the request builder reads. */
function jobWith(spec: Partial<JobRecord["spec"]>): JobRecord {
  return { spec: { provider: "echo", model: "m-1", ...spec } } as unknown as JobRecord;
}

describe("the requests loom view shows", () => {
  it("renders the template and system prompt from the row's columns, with the job's params", () => {
    const request = requestsOf(jobWith({
      prompt: { template: "Summarise {{title}}: {{body}}", system: "You write for {{audience}}." },
      params: { temperature: 0.2, max_tokens: 50 },
      schema: "schemas/article.json",
    }))!;
    assert.deepEqual(
      request({ title: "Rain", body: "It rained.", audience: "kids", llm_response: "x" }),
      {
        model: "m-1",
        system: "You write for kids.",
        prompt: "Summarise Rain: It rained.",
        params: { temperature: 0.2, max_tokens: 50 },
        schema: true,
      },
    );
  });

  it("a row the job could not send says why; a long prompt is cut on a page, whole in a row", () => {
    const request = requestsOf(jobWith({ prompt: { column: "text" } }))!;
    assert.deepEqual(request({ id: 1 }), { error: 'row has no "text" field' });
    assert.deepEqual(request({ text: "  " }), { error: "empty prompt: nothing was sent" });
    const long = "word ".repeat(500);
    assert.equal((request({ text: long }) as { prompt: string }).prompt.length, 1000);
    assert.equal((request({ text: long }, true) as { prompt: string }).prompt, long);
  });

  it("a file given by path has no job, so no requests", () => {
    assert.equal(requestsOf(undefined), undefined);
  });
});
