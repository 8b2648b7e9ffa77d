/**
 * The `acme` provider passes Loom's provider conformance suite against the emulator's OpenAI API,
 * and behaves as its README says on the points the suite leaves open.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Emulator, startEmulator } from "loom-batch/emulator";
import { LoomError, type LoomProviderError, type ProviderV1 } from "loom-batch/plugin";
import { providerConformance } from "loom-batch/testing";
import plugins, { acme } from "./mod.ts";

const context = { env: {}, home: "/nonexistent" };

providerConformance({
  emulator: "openai",
  model: "gpt-4o-mini",
  create: ({ baseURL, apiKey }) => acme.create({ apiKey, base_url: baseURL }, context),
});

/** What a call rejected with, as a provider error. */
async function failure(call: Promise<unknown>): Promise<LoomProviderError> {
  const error = await call.then(() => assert.fail("the call succeeded"), (e: unknown) => e);
  assert.ok(LoomError.isInstance(error), `not a Loom error: ${String(error)}`);
  return error as LoomProviderError;
}

describe("acme provider", () => {
  let emu: Emulator;
  let provider: ProviderV1;
  const ask = (content: string, extra: object = {}) =>
    provider.generate({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content }],
      params: {},
      ...extra,
    });

  before(async () => {
    emu = await startEmulator({ provider: "openai", openaiSpec: false, models: "any" });
    provider = await acme.create({ base_url: `${emu.baseURL}/` }, {
      ...context,
      env: { ACME_API_KEY: emu.apiKey },
    });
  });
  after(() => emu.stop());

  it("is the first of the package's two plugins", () => {
    assert.deepEqual(plugins.map((p) => `${p.kind}:${p.name}`), ["provider:acme", "format:ltsv"]);
  });

  it("sends the system prompt first and the parameters compatible servers read", async () => {
    const result = await ask("hello", {
      system: "be brief",
      params: { max_tokens: 20, temperature: 0 },
    });
    assert.equal(result.finishReason, "stop");
    assert.equal(result.model?.startsWith("gpt-4o-mini"), true);
    const body = emu.log.find("/chat/completions").at(-1)?.body as Record<string, unknown>;
    assert.deepEqual(body.messages, [{ role: "system", content: "be brief" }, {
      role: "user",
      content: "hello",
    }]);
    assert.equal(body.max_tokens, 20);
    assert.equal(body.temperature, 0);
  });

  it("asks for the answer schema as a json_schema response format", async () => {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
    const result = await ask("a city", { responseSchema: schema });
    assert.equal(typeof JSON.parse(result.text).city, "string");
  });

  it("passes on the wait a 429 asks for", async () => {
    emu.faults.add({
      match: { promptContains: "WAIT" },
      action: { kind: "status", status: 429, retryAfter: 2 },
    });
    const error = await failure(ask("WAIT"));
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterMs, 2000);
  });

  it("never shows a key the server echoes back", async () => {
    emu.faults.add({
      match: { promptContains: "ECHO" },
      action: { kind: "status", status: 401, message: `Incorrect API key provided: ${emu.apiKey}` },
    });
    const error = await failure(ask("ECHO"));
    assert.equal(error.fatal, true);
    assert.ok(!error.message.includes(emu.apiKey), error.message);
    assert.match(error.message, /HTTP 401: Incorrect API key provided: \*\*\*/);
  });

  it("calls an endpoint that does not answer retryable, naming it", async () => {
    const gone = await startEmulator({ provider: "openai", openaiSpec: false });
    const url = gone.baseURL;
    await gone.stop();
    const down = await acme.create({ base_url: url, apiKey: "k-123456" }, context);
    const error = await failure(
      down.generate({ model: "m", messages: [{ role: "user", content: "x" }], params: {} }),
    );
    assert.equal(error.retryable, true);
    assert.ok(error.message.includes(url), error.message);
  });

  it("retries a call past timeout_ms, and lets an abort go up as it is", async () => {
    emu.faults.add({ match: { promptContains: "SLOW" }, action: { kind: "slow", delayMs: 5_000 } });
    const hasty = await acme.create(
      { base_url: emu.baseURL, apiKey: emu.apiKey, timeout_ms: 50 },
      context,
    );
    const late = await failure(
      hasty.generate({ model: "m", messages: [{ role: "user", content: "SLOW" }], params: {} }),
    );
    assert.equal(late.retryable, true);
    assert.match(late.message, /no answer within 50 ms .*timeout_ms/);
    const controller = new AbortController();
    const aborted = provider.generate(
      { model: "m", messages: [{ role: "user", content: "SLOW" }], params: {} },
      { signal: controller.signal },
    );
    controller.abort();
    const error = await aborted.then(() => assert.fail("resolved"), (e: Error) => e);
    assert.equal(error.name, "AbortError");
    assert.equal(LoomError.isInstance(error), false);
  });

  it("batch: records the upload before the create, reuses it on a retry, deletes it once", async () => {
    const api = provider.batch!;
    const items = [{
      customId: "a",
      request: { model: "m", messages: [{ role: "user" as const, content: "hi" }], params: {} },
    }];
    const label = { job: "j", shard: 0, name: "loom-j-0" };
    const steps: string[] = [];
    let upload: Record<string, string> = {};
    await api.submit(items, label, {
      onUploaded: async (u) => void steps.push(`uploaded ${JSON.stringify(upload = u)}`),
      onCreate: async () => void steps.push("create"),
    });
    assert.deepEqual(steps, [`uploaded ${JSON.stringify(upload)}`, "create"]);
    const uploads = emu.log.count("POST /v1/files");
    const again = await api.submit(items, label, { upload });
    assert.equal(emu.log.count("POST /v1/files"), uploads, "the retry uploaded nothing");
    assert.equal(again.data?.input_file_id, upload.input_file_id);
    await api.deleteUpload!(upload);
    await api.deleteUpload!(upload); // gone already is success
    assert.equal(emu.log.count(/^DELETE \/v1\/files\//), 2);
    const command = api.deleteUploadCommand!(upload);
    assert.ok(command.includes("$ACME_API_KEY") && !command.includes(emu.apiKey), command);
  });

  it("refuses a missing base_url or key with what to set", () => {
    assert.throws(() => acme.create({ apiKey: "k" }, context), /base_url .*--base-url/);
    assert.throws(
      () => acme.create({ base_url: "http://localhost:1/v1" }, context),
      /ACME_API_KEY/,
    );
    assert.throws(
      () =>
        acme.create({ base_url: "http://localhost:1/v1", apiKey: "k", timeout_ms: -1 }, context),
      /timeout_ms/,
    );
  });
});
