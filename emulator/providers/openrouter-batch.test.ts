// Answers are read as loose JSON: the contract module checks their shape, these tests their values.
// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { ManualClock } from "../clock.ts";
import { parseFaultSpec } from "../faults.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../server.ts";

const MODEL = "openai/gpt-4o-mini";

/** One HTTP exchange with an emulator, as a client without an SDK makes it. */
async function call(
  emu: Emulator,
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${emu.baseURL}${path}`, {
    method,
    headers: { authorization: `Bearer ${emu.apiKey}`, "content-type": "application/json" },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const request = (customId: string, content: string, extra: Record<string, unknown> = {}) => ({
  custom_id: customId,
  body: { messages: [{ role: "user", content }], ...extra },
});

const submit = (emu: Emulator, requests: unknown[], model = MODEL) =>
  call(emu, "POST", "/batches", { endpoint: "/v1/chat/completions", model, requests });

describe("openrouter batch emulator: the lifecycle", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ provider: "openrouter", schedule: { advance: "manual" } });
  });
  after(() => emu.stop());
  beforeEach(() => emu.log.clear());

  it("creates with 202 validating, moves step by step to completed, and carries results inline", async () => {
    const made = await submit(emu, [
      request("a", "the rain in Spain"),
      request("b", "falls mainly", { max_tokens: 2 }),
    ]);
    assert.equal(made.status, 202);
    assert.equal(made.json.status, "validating");
    assert.equal(made.json.results, null);
    assert.equal(made.json.usage, null);
    assert.deepEqual(made.json.request_counts, { total: 2, completed: 0, failed: 0 });
    const id = made.json.id as string;
    assert.match(id, /^batch_/);

    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      emu.step(id);
      const got = await call(emu, "GET", `/batches/${id}`);
      seen.push(got.json.status as string);
      if (got.json.status !== "completed") assert.equal(got.json.results, null);
    }
    assert.deepEqual(seen, ["in_progress", "in_progress", "finalizing", "completed"]);

    const done = (await call(emu, "GET", `/batches/${id}`)).json;
    assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
    assert.equal(typeof done.finalized_at, "number");
    assert.equal(done.provider, "OpenAI");
    const results = done.results as Array<Record<string, any>>;
    assert.deepEqual(results.map((r) => r.custom_id).sort(), ["a", "b"]);
    const a = results.find((r) => r.custom_id === "a")!;
    assert.equal(a.error, null);
    assert.equal(a.response.status_code, 200);
    assert.equal(a.response.body.choices[0].message.content, `[${MODEL}] the rain in Spain`);
    const b = results.find((r) => r.custom_id === "b")!;
    assert.equal(b.response.body.choices[0].finish_reason, "length");

    // The same request through the sync endpoint gets the same answer, at twice the batch price.
    const sync = await call(emu, "POST", "/chat/completions", {
      model: MODEL,
      ...request("", "the rain in Spain").body,
    });
    const syncBody = sync.json as Record<string, any>;
    const batchBody = a.response.body;
    assert.deepEqual(batchBody.choices, syncBody.choices);
    assert.equal(batchBody.usage.total_tokens, syncBody.usage.total_tokens);
    assert.equal(batchBody.usage.cost * 2, syncBody.usage.cost);
    const usage = done.usage as Record<string, number>;
    const sum = (k: string) => results.reduce((s, r) => s + r.response.body.usage[k], 0);
    assert.equal(usage.prompt_tokens, sum("prompt_tokens"));
    assert.equal(usage.completion_tokens, sum("completion_tokens"));
    assert.equal(usage.total_tokens, sum("total_tokens"));
    assert.ok(Math.abs(usage.cost - sum("cost")) < 1e-12);
  });

  it("lists newest first without results, pages with after=last_id, and filters by status", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await submit(emu, [request("x", `n${i}`)])).json.id as string);
    }
    const first = (await call(emu, "GET", "/batches?limit=2")).json;
    const data = first.data as Array<Record<string, unknown>>;
    assert.deepEqual(data.map((b) => b.id), [ids[2], ids[1]]);
    assert.ok(data.every((b) => b.results === null));
    assert.equal(first.has_more, true);
    assert.equal(first.last_id, ids[1]);
    const second = (await call(emu, "GET", `/batches?limit=2&after=${ids[1]}`)).json;
    assert.equal((second.data as Array<{ id: string }>)[0].id, ids[0]);
    const validating = (await call(emu, "GET", "/batches?status=validating&limit=100")).json;
    assert.deepEqual(
      (validating.data as Array<{ id: string }>).map((b) => b.id),
      [...ids].reverse(),
    );
    assert.equal((await call(emu, "GET", "/batches?limit=101")).status, 400);
    assert.equal((await call(emu, "GET", "/batches?status=done")).status, 400);
  });

  it("deletes only a terminal batch (409 before), then answers 404 for it", async () => {
    const id = (await submit(emu, [request("x", "delete me")])).json.id as string;
    const early = await call(emu, "DELETE", `/batches/${id}`);
    assert.equal(early.status, 409);
    assert.equal((early.json.error as { code: number }).code, 409);
    emu.step(id, 4);
    const gone = await call(emu, "DELETE", `/batches/${id}`);
    assert.equal(gone.status, 200);
    assert.deepEqual(gone.json, {
      id,
      object: "batch",
      deletion: { openrouter: "deleted", upstream: { provider: "OpenAI", status: "deleted" } },
    });
    assert.equal((await call(emu, "GET", `/batches/${id}`)).status, 404);
    assert.equal((await call(emu, "DELETE", `/batches/${id}`)).status, 404);
    assert.equal((await call(emu, "DELETE", "/batches/batch_unknown")).status, 404);
  });

  it("cancels a running batch: answers it still in_progress, then it is cancelled with no result rows", async () => {
    const id = (await submit(emu, [request("a", "one"), request("b", "two")])).json.id as string;
    emu.step(id, 2); // in_progress, half done
    const asked = await call(emu, "POST", `/batches/${id}/cancel`);
    assert.equal(asked.status, 200);
    assert.equal(asked.json.status, "in_progress");
    assert.equal(asked.json.results, null);
    // "Repeating the call is safe while the batch is still in_progress."
    assert.equal((await call(emu, "POST", `/batches/${id}/cancel`)).status, 200);
    emu.step(id);
    const done = (await call(emu, "GET", `/batches/${id}`)).json;
    assert.equal(done.status, "cancelled");
    assert.deepEqual(done.results, []);
    assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 0 });
    // The request that finished before the cancellation is still charged.
    assert.equal((done.usage as { cost: number }).cost > 0, true);
    const again = await call(emu, "POST", `/batches/${id}/cancel`);
    assert.equal(again.status, 409);
    assert.equal((again.json.error as { code: number }).code, 409);
    assert.equal((await call(emu, "POST", "/batches/batch_unknown/cancel")).status, 404);
  });

  it("lets a batch already finalizing complete although a cancel came", async () => {
    const id = (await submit(emu, [request("a", "one")])).json.id as string;
    emu.step(id, 3); // finalizing
    assert.equal((await call(emu, "POST", `/batches/${id}/cancel`)).status, 200);
    emu.step(id);
    const done = (await call(emu, "GET", `/batches/${id}`)).json;
    assert.equal(done.status, "completed");
    assert.equal((done.results as unknown[]).length, 1);
  });

  it("pages results with a cursor once terminal, and answers 409 before", async () => {
    const reqs = Array.from({ length: 5 }, (_, i) => request(`r${i}`, `item ${i}`));
    const id = (await submit(emu, reqs)).json.id as string;
    assert.equal((await call(emu, "GET", `/batches/${id}/results`)).status, 409);
    emu.step(id, 4);
    const got: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { json: Record<string, any> } = await call(
        emu,
        "GET",
        `/batches/${id}/results?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      got.push(...page.json.data.map((r: { custom_id: string }) => r.custom_id));
      cursor = page.json.next_cursor;
      assert.equal(page.json.has_more, cursor !== null);
    } while (cursor);
    assert.deepEqual(got.sort(), ["r0", "r1", "r2", "r3", "r4"]);
    const all = (await call(emu, "GET", `/batches/${id}`)).json.results as Array<
      { custom_id: string }
    >;
    assert.equal(all.length, 5);
    assert.equal((await call(emu, "GET", `/batches/${id}/results?cursor=nonsense`)).status, 400);
  });

  it("runs a batch on a model's :batch variant as on the model itself", async () => {
    const made = await submit(emu, [request("v", "variant")], `${MODEL}:batch`);
    assert.equal(made.status, 202);
    assert.equal(made.json.model, `${MODEL}:batch`);
    emu.step(made.json.id as string, 4);
    const done = (await call(emu, "GET", `/batches/${made.json.id}`)).json;
    assert.equal(done.status, "completed");
    const [result] = done.results as Array<Record<string, any>>;
    assert.equal(result.response.body.choices[0].message.content, `[${MODEL}] variant`);
    assert.equal((await submit(emu, [request("v", "x")], "acme/none:batch")).status, 400);
  });

  it("serves the quickstart's /api/beta/batches over the same store", async () => {
    const id = (await submit(emu, [request("x", "beta")])).json.id as string;
    const res = await fetch(`${emu.url}/api/beta/batches/${id}`, {
      headers: { authorization: `Bearer ${emu.apiKey}` },
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { id: string }).id, id);
  });
});

describe("openrouter batch emulator: scenarios", () => {
  const start = (options: Partial<EmulatorOptions>) =>
    startEmulator({ provider: "openrouter", schedule: { advance: "manual" }, ...options });

  it("refuses a cancel with 403 where cancellation is not enabled for the organization", async () => {
    const emu = await start({ batches: [{ cancelForbidden: true }] });
    try {
      const id = (await submit(emu, [request("a", "one")])).json.id as string;
      const refused = await call(emu, "POST", `/batches/${id}/cancel`);
      assert.equal(refused.status, 403);
      assert.match((refused.json.error as { message: string }).message, /not enabled/);
      emu.step(id, 4);
      assert.equal((await call(emu, "GET", `/batches/${id}`)).json.status, "completed");
    } finally {
      await emu.stop();
    }
  });

  it("fails requests whose prompt matches inside a completed batch (response null, error set)", async () => {
    const emu = await start({ batches: [{ failPromptContains: "BAD" }] });
    try {
      const id = (await submit(emu, [request("ok", "fine"), request("bad", "BAD one")])).json
        .id as string;
      emu.step(id, 4);
      const done = (await call(emu, "GET", `/batches/${id}`)).json;
      assert.equal(done.status, "completed");
      assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 1 });
      const bad = (done.results as Array<Record<string, any>>).find((r) => r.custom_id === "bad")!;
      assert.equal(bad.response, null);
      assert.equal(typeof bad.error.message, "string");
    } finally {
      await emu.stop();
    }
  });

  it("fails a batch with a reason in error.message, and expires one with partial results", async () => {
    const emu = await start({
      batches: [{ nth: 1, end: "fail" }, { nth: 2, end: "expire", processed: 1 }],
    });
    try {
      const failed = (await submit(emu, [request("a", "x")])).json.id as string;
      emu.step(failed);
      const f = (await call(emu, "GET", `/batches/${failed}`)).json;
      assert.equal(f.status, "failed");
      assert.match((f.error as { message: string }).message, /\S/);
      assert.deepEqual(f.results, []);
      assert.equal(typeof f.finalized_at, "number");

      const expiring =
        (await submit(emu, [request("a", "x"), request("b", "y"), request("c", "z")])).json
          .id as string;
      emu.step(expiring, 3);
      const e = (await call(emu, "GET", `/batches/${expiring}`)).json;
      assert.equal(e.status, "expired");
      const results = e.results as Array<Record<string, any>>;
      assert.equal(results.length, 3);
      assert.equal(results.filter((r) => r.response !== null).length, 1);
      assert.equal(results.filter((r) => r.error?.type === "batch_expired").length, 2);
      assert.deepEqual(e.request_counts, { total: 3, completed: 1, failed: 2 });
    } finally {
      await emu.stop();
    }
  });

  it("lists only the batches created after or before a time", async () => {
    const clock = new ManualClock();
    const emu = await start({ clock });
    try {
      const first = (await submit(emu, [request("a", "x")])).json;
      clock.advance(10_000);
      const second = (await submit(emu, [request("a", "x")])).json;
      const ids = async (query: string) =>
        ((await call(emu, "GET", `/batches?${query}`)).json.data as Array<{ id: string }>).map((
          b,
        ) => b.id);
      assert.deepEqual(await ids(`created_after=${first.created_at}`), [second.id]);
      assert.deepEqual(await ids(`created_before=${second.created_at}`), [first.id]);
      const iso = new Date((first.created_at as number) * 1000).toISOString();
      assert.deepEqual(await ids(`created_after=${encodeURIComponent(iso)}`), [second.id]);
      assert.equal((await call(emu, "GET", "/batches?created_after=soon")).status, 400);
    } finally {
      await emu.stop();
    }
  });

  it("expires an unfinished batch once the clock passes expires_at", async () => {
    const clock = new ManualClock();
    const emu = await start({ clock });
    try {
      const made = (await submit(emu, [request("a", "x"), request("b", "y")])).json;
      assert.equal(made.expires_at, (made.created_at as number) + 86_400);
      emu.step(made.id as string, 2);
      clock.advance(25 * 3_600_000);
      const e = (await call(emu, "GET", `/batches/${made.id}`)).json;
      assert.equal(e.status, "expired");
      assert.equal(e.finalized_at, made.expires_at);
      assert.equal((e.results as unknown[]).length, 2);
    } finally {
      await emu.stop();
    }
  });
});

describe("openrouter batch emulator: faults", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ provider: "openrouter", schedule: { advance: "manual" } });
  });
  after(() => emu.stop());
  beforeEach(() => {
    emu.faults.clear();
    emu.log.clear();
  });
  const listed = async () =>
    ((await call(emu, "GET", "/batches?limit=100")).json.data as Array<{ id: string }>).map((b) =>
      b.id
    );

  it("answers 429 with retry-after on create without creating a batch, and 502 on get", async () => {
    const before = await listed();
    emu.faults.add(parseFaultSpec("status=429,retry-after=3,method=POST,path=/batches,first=1"));
    const res = await fetch(`${emu.baseURL}/batches`, {
      method: "POST",
      headers: { authorization: `Bearer ${emu.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        endpoint: "/v1/chat/completions",
        model: MODEL,
        requests: [request("a", "b")],
      }),
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "3");
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, 429);
    assert.deepEqual(await listed(), before);

    const id = (await submit(emu, [request("a", "b")])).json.id as string;
    emu.faults.add(parseFaultSpec(`status=502,method=GET,batch=${id},first=1`));
    const got = await call(emu, "GET", `/batches/${id}`);
    assert.equal(got.status, 502);
    assert.equal((got.json.error as { code: number }).code, 502);
    assert.equal((await call(emu, "GET", `/batches/${id}`)).status, 200);
  });

  it("creates the batch when the create's answer is lost, and lists it only after the delay", async () => {
    // A fresh emulator, so the create is the first request on its connection: Deno's fetch
    // resends a request whose reused keep-alive connection closes (plugins/providers/_shared).
    const lossy = await startEmulator({
      provider: "openrouter",
      faults: [parseFaultSpec("lost=reset,listed-after=1,method=POST,path=/batches,first=1")],
    });
    try {
      await assert.rejects(submit(lossy, [request("a", "lost answer")]));
      const ids = async () =>
        ((await call(lossy, "GET", "/batches")).json.data as Array<{ id: string }>).map((b) =>
          b.id
        );
      assert.deepEqual(await ids(), [], "the first list call leaves the new batch out");
      const now = await ids();
      assert.equal(now.length, 1);
      assert.equal(lossy.log.count("POST /api/v1/batches"), 1);
      assert.equal(lossy.log.entries[0].status, 0);
      const made = (await call(lossy, "GET", `/batches/${now[0]}`)).json;
      assert.deepEqual(made.request_counts, { total: 1, completed: 0, failed: 0 });
    } finally {
      await lossy.stop();
    }
  });

  it("applies reply faults to the batch lines they match, as the sync endpoint does", async () => {
    emu.faults.add({
      match: { promptContains: "JSONME" },
      action: { kind: "reply", text: "{not json" },
    });
    const id = (await submit(emu, [request("j", "JSONME please"), request("k", "plain")])).json
      .id as string;
    emu.step(id, 4);
    const results = (await call(emu, "GET", `/batches/${id}`)).json.results as Array<
      Record<string, any>
    >;
    const text = (c: string) =>
      results.find((r) => r.custom_id === c)!.response.body.choices[0].message.content;
    assert.equal(text("j"), "{not json");
    assert.equal(text("k"), `[${MODEL}] plain`);
  });

  it("fails a batch whose request the chat endpoint would refuse, naming the request", async () => {
    const id = (await submit(emu, [request("fine", "x"), { custom_id: "empty", body: {} }])).json
      .id as string;
    emu.step(id);
    const failed = (await call(emu, "GET", `/batches/${id}`)).json;
    assert.equal(failed.status, "failed");
    assert.match((failed.error as { message: string }).message, /empty.*messages/);
    assert.equal(failed.usage, null);
  });

  it("moves slowly under a polls:N schedule and a slow fault", async () => {
    const slow = await startEmulator({
      provider: "openrouter",
      schedule: { advance: "polls", polls: 3 },
      faults: [parseFaultSpec("slow=150,method=GET,path=/batches/")],
    });
    try {
      const id = (await submit(slow, [request("a", "b")])).json.id as string;
      const statuses: string[] = [];
      const t0 = Date.now();
      for (let i = 0; i < 4; i++) {
        statuses.push((await call(slow, "GET", `/batches/${id}`)).json.status as string);
      }
      assert.ok(Date.now() - t0 >= 4 * 140);
      assert.deepEqual(statuses, ["validating", "validating", "validating", "in_progress"]);
    } finally {
      await slow.stop();
    }
  });

  it("works through the openai SDK's generic post/get/delete, as the provider calls it", async () => {
    const client = new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 });
    const made = await client.post<{ id: string; status: string }>("/batches", {
      body: { endpoint: "/v1/chat/completions", model: MODEL, requests: [request("a", "sdk")] },
    });
    assert.equal(made.status, "validating");
    await assert.rejects(
      client.delete(`/batches/${made.id}`),
      (e: { status?: number }) => e.status === 409,
    );
    emu.step(made.id, 4);
    const done = await client.get<{ status: string; results: unknown[] }>(
      `/batches/${made.id}`,
    );
    assert.equal(done.status, "completed");
    assert.equal(done.results.length, 1);
    await client.delete(`/batches/${made.id}`);
    await assert.rejects(
      client.get(`/batches/${made.id}`),
      (e: { status?: number }) => e.status === 404,
    );
  });
});
