/** Calls in flight: identical requests share one call; aborting the run aborts every call in flight. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import type { DatasetRow } from "../spec/format.ts";
import type { GenerateRequest, ProviderV1 } from "../spec/provider.ts";
import { CALLS_PER_SIGNAL, CallSignals, CallsInFlight } from "./in-flight.ts";
import { executeSync } from "./sync.ts";

const request = (content: string, system?: string): GenerateRequest => ({
  model: "m",
  ...(system === undefined ? {} : { system }),
  messages: [{ role: "user", content }],
  params: {},
});

/** Echo whose calls end only when `release` is called, counting what it was asked. */
function heldEcho() {
  const echo = createEchoProvider();
  const calls: GenerateRequest[] = [];
  const signals: AbortSignal[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const provider: ProviderV1 = {
    ...echo,
    async generate(req, options) {
      calls.push(req);
      signals.push(options!.signal!);
      await Promise.race([
        released,
        new Promise((_, reject) =>
          options!.signal!.addEventListener("abort", () => reject(options!.signal!.reason))
        ),
      ]);
      return echo.generate(req, options);
    },
  };
  return { provider, calls, signals, release };
}

async function* rows(requests: readonly GenerateRequest[]): AsyncGenerator<DatasetRow> {
  for (const [index] of requests.entries()) yield { index, line: index + 2, fields: {} };
}

describe("CallsInFlight", () => {
  it("with the cache off, finds a call by its prompt and the whole request", () => {
    const calls = new CallsInFlight<string>(false);
    const a = request("same");
    const key = calls.keyOf(a, undefined);
    calls.add(key, a, Promise.resolve("a"));
    const system = request("same", "be brief");
    assert.ok(calls.get(calls.keyOf(request("same"), undefined), request("same")));
    assert.equal(calls.get(calls.keyOf(system, undefined), system), undefined, "system differs");
    calls.add(key, system, Promise.resolve("s"));
    assert.ok(calls.get(key, request("same", "be brief")));
    calls.delete(a);
    assert.equal(calls.get(key, request("same")), undefined);
    assert.ok(calls.get(key, request("same", "be brief")));
    calls.delete(system);
    assert.equal(calls.get(key, request("same", "be brief")), undefined);
  });

  it("with the cache on, finds a call by its cache key alone", () => {
    const calls = new CallsInFlight<string>(true);
    calls.add(calls.keyOf(request("x"), "k1"), request("x"), Promise.resolve("x"));
    assert.ok(calls.get("k1", request("x")));
    assert.equal(calls.get("k2", request("x")), undefined);
  });
});

describe("the sync executor's calls in flight", () => {
  it("with the cache off, identical requests at the same time share one call", async () => {
    const { provider, calls, release } = heldEcho();
    const requests = [request("a"), request("a"), request("b"), request("a", "sys"), request("a")];
    const run = executeSync(rows(requests), {
      provider,
      buildRequest: (row) => ({ request: requests[row.index] }),
      workers: 8,
    });
    const results = (async () => {
      const out = [];
      for await (const r of run) out.push(r);
      return out;
    })();
    while (calls.length < 3) await new Promise((r) => setImmediate(r));
    release();
    const done = await results;
    assert.deepEqual(done.map((r) => r.outcome), ["ok", "ok", "ok", "ok", "ok"]);
    assert.deepEqual(done.map((r) => r.result?.text), ["a", "a", "b", "a", "a"]);
    assert.deepEqual(calls.map((c) => [c.system, c.messages[0].content]), [
      [undefined, "a"],
      [undefined, "b"],
      ["sys", "a"],
    ]);
  });

  it("with the cache off, serializes no request whose prompt no other call in flight has", async () => {
    // A JSON key a row made the heap grow with the rows on Deno (issue 13): requests are now
    // serialized only to compare two with the same prompt.
    let serialized = 0;
    const counted = (content: string) =>
      Object.defineProperty(request(content), "toJSON", {
        value(this: GenerateRequest) {
          serialized++;
          return { ...this };
        },
      });
    const requests = Array.from({ length: 600 }, (_, i) => counted(`q${i}`));
    requests.push(counted("q0"), counted("q0")); // the same prompt twice, at the same time
    let done = 0;
    for await (
      const r of executeSync(rows(requests), {
        provider: createEchoProvider(),
        buildRequest: (row) => ({ request: requests[row.index] }),
        workers: 8,
      })
    ) done += r.outcome === "ok" ? 1 : 0;
    assert.equal(done, 602);
    assert.ok(serialized <= 2, `${serialized} requests serialized`);
  });

  it("aborting the run aborts every call in flight", async () => {
    const { provider, calls, signals } = heldEcho();
    const requests = Array.from({ length: 6 }, (_, i) => request(`q${i}`));
    const controller = new AbortController();
    const run = executeSync(rows(requests), {
      provider,
      buildRequest: (row) => ({ request: requests[row.index] }),
      workers: 6,
      signal: controller.signal,
    });
    const ended = (async () => {
      for await (const _ of run);
    })();
    while (calls.length < 6) await new Promise((r) => setImmediate(r));
    controller.abort(new Error("stop"));
    await assert.rejects(ended, /stop/);
    assert.ok(signals.every((s) => s.aborted));
  });
});

describe("CallSignals", () => {
  it("hands out a fresh signal every CALLS_PER_SIGNAL calls, and aborts those in use", () => {
    const run = new AbortController();
    const signals = new CallSignals(run.signal);
    const first = signals.take();
    for (let i = 1; i < CALLS_PER_SIGNAL; i++) signals.release(signals.take());
    const second = signals.take();
    assert.notEqual(first, second);
    signals.release(second);
    const third = signals.take(); // the same as the second, still in use
    run.abort(new Error("stop"));
    assert.ok(first.signal.aborted && third.signal.aborted);
    const late = signals.take();
    assert.ok(late.signal.aborted, "a call after the abort gets an aborted signal");
  });
});
