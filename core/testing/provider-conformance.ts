/**
 * A conformance suite for provider plugins, built-in or third-party. It defines `node:test` tests
 * (so it runs under both `deno test` and `node --test`) that start the loopback emulator of
 * `loom-batch/emulator`, create the provider against it and check the promises of the provider
 * contract: a sync answer with text and usage; an aborted call rejects promptly; a bad key is
 * fatal, 429 and 5xx are retryable, 400 is not; no error message holds the API key; and, when the
 * provider has a batch API: a batch's lifecycle and its outcomes joined by custom id (one request
 * failing alone), cancel, `find` after a create whose answer was lost, `itemBytes` and
 * `encodeItem` agreeing.
 *
 * ```ts
 * import { providerConformance } from "loom-batch/testing";
 * import plugin from "./mod.ts";
 * providerConformance({
 *   emulator: "openai",
 *   model: "gpt-4o-mini",
 *   create: ({ baseURL, apiKey }) => plugin.create({ apiKey, base_url: baseURL }, context),
 * });
 * ```
 * Each check starts an emulator of its own, so fault rules never leak from one to the next.
 * {@link runProviderCheck} runs one check outside `node:test` (it rejects with the assertion
 * that failed), which is how the suite's own tests prove every check can fail.
 * @module
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../emulator/mod.ts";
import type { ProviderName } from "../../emulator/mod.ts";
import { LoomError } from "../base/errors.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchLabel,
  BatchOutcome,
  BatchState,
  GenerateRequest,
  ProviderV1,
} from "../spec/provider.ts";

/** What {@link providerConformance} needs to know about a provider. */
export interface ProviderConformanceOptions {
  /** Name of the suite; defaults to the provider's emulator. */
  readonly name?: string;
  /** Creates the provider, pointed at the emulator's base URL with this key. */
  create(options: { baseURL: string; apiKey: string }): ProviderV1 | Promise<ProviderV1>;
  /** The emulator that speaks the provider's HTTP API. */
  readonly emulator: ProviderName;
  /** The model requests name. */
  readonly model: string;
  /**
   * The emulator's options, over the suite's (any model, batches that move only when the suite
   * steps them, no OpenAPI contract check; set `openaiSpec` to a path to have it).
   */
  readonly emulatorOptions?: Partial<Omit<EmulatorOptions, "provider">>;
  /**
   * The path of the request that creates a batch, for the lost-create check (default: the one of
   * the emulator's own provider, e.g. `/v1/batches` for `openai`).
   */
  readonly batchCreatePath?: string | RegExp;
  /**
   * The provider labels its batches, so `find` answers `exact: true` (default true; false for a
   * provider that can only list the batches that could be it).
   */
  readonly labelsBatches?: boolean;
  /** How long a call may take before the check fails (default 5000 ms). */
  readonly timeoutMs?: number;
}

/** Each emulator's batch create request, as a fault rule's path. */
const CREATE_PATHS: Partial<Record<ProviderName, RegExp>> = {
  openai: /^\/v1\/batches$/,
  anthropic: /^\/v1\/messages\/batches$/,
  gemini: /:batchGenerateContent$/,
};

/** Requests whose prompt holds this fail alone inside a batch (the emulator's scenario). */
const FAIL_MARK = "CONFORMANCE-FAIL";
const TERMINAL: readonly BatchState[] = ["completed", "failed", "expired", "cancelled"];

/** What one check gets: the running emulator, the provider created against it, the options. */
interface CheckContext {
  readonly emu: Emulator;
  readonly provider: ProviderV1;
  readonly options: ProviderConformanceOptions;
  /** Creates another instance of the provider with another key. */
  providerWithKey(apiKey: string): Promise<ProviderV1>;
  request(prompt: string): GenerateRequest;
  within<T>(promise: Promise<T>, what: string): Promise<T>;
}

type Check = (ctx: CheckContext) => Promise<void> | void;

/** Thrown by a batch check when the provider has no batch API: the test is skipped. */
class Skip extends Error {}

/** Asserts a provider error as any copy of Loom recognises it, and returns its fields. */
function providerError(error: unknown, what: string) {
  assert.ok(
    LoomError.isInstance(error),
    `${what}: expected a LoomProviderError, got ${String(error)}`,
  );
  const e = error as LoomError & { retryable?: unknown; fatal?: unknown; status?: unknown };
  assert.equal(typeof e.retryable, "boolean", `${what}: the error has no retryable flag`);
  assert.equal(typeof e.fatal, "boolean", `${what}: the error has no fatal flag`);
  return e as LoomError & { retryable: boolean; fatal: boolean; status?: number };
}

/** Asserts that no secret appears in an error's message (or its cause's). */
function assertNoSecret(error: unknown, secrets: readonly string[], what: string): void {
  const texts = [String((error as Error)?.message ?? error)];
  const cause = (error as { cause?: unknown })?.cause;
  if (cause !== undefined) texts.push(String((cause as Error)?.message ?? cause));
  for (const secret of secrets) {
    for (const text of texts) {
      assert.ok(!text.includes(secret), `${what}: an error message shows the API key: ${text}`);
    }
  }
}

/** The provider's batch API, or a skip when it has none. */
function batchOf(provider: ProviderV1): BatchApi {
  if (!provider.batch) throw new Skip("the provider has no batch API");
  return provider.batch;
}

/** Every outcome of a batch, through `resultChunks` and `results` (which must agree). */
async function outcomesOf(
  api: BatchApi,
  handle: BatchHandle,
  customIds: readonly string[],
): Promise<BatchOutcome[]> {
  const all: BatchOutcome[] = [];
  for await (const o of api.results(handle, customIds)) all.push(o);
  if (api.resultChunks) {
    const chunked: BatchOutcome[] = [];
    for await (const chunk of api.resultChunks(handle, customIds)) chunked.push(...chunk);
    const key = (o: BatchOutcome) => JSON.stringify(o);
    assert.deepEqual(
      chunked.map(key).sort(),
      all.map(key).sort(),
      "resultChunks yields the same outcomes as results",
    );
  }
  return all;
}

/** Polls a batch's status, stepping it on, until it ends; returns every state seen. */
async function untilEnded(ctx: CheckContext, api: BatchApi, handle: BatchHandle) {
  const seen: BatchState[] = [];
  for (let i = 0; i < 20; i++) {
    const status = await ctx.within(api.status(handle), "status");
    assert.ok(
      [...TERMINAL, "validating", "in_progress"].includes(status.state),
      `status: unknown state ${status.state}`,
    );
    seen.push(status.state);
    if (TERMINAL.includes(status.state)) return seen;
    ctx.emu.step(); // every batch: ids are not always the emulator's own (`batches/…`)
  }
  assert.fail(`status: batch ${handle.id} never ended (states seen: ${seen.join(", ")})`);
}

const label = (job: string, shard = 0): BatchLabel => ({
  job,
  shard,
  name: `loom-${job}-${shard}`,
});

/** Rejects with the status fault's error when the next request carrying `mark` meets `status`. */
async function faultError(ctx: CheckContext, status: number): Promise<unknown> {
  const mark = `FAULT-${status}-${randomUUID()}`;
  ctx.emu.faults.add({
    match: { promptContains: mark, first: 1 },
    action: { kind: "status", status },
  });
  try {
    await ctx.within(ctx.provider.generate(ctx.request(`${mark} please`)), `HTTP ${status}`);
  } catch (error) {
    assertNoSecret(error, [ctx.emu.apiKey], `HTTP ${status}`);
    return error;
  }
  assert.fail(`HTTP ${status}: generate resolved although the provider answered ${status}`);
}

/** The name of one check: the name of its test. */
export type ProviderCheckName =
  | "declares the v1 contract"
  | "answers a request with its text and token usage"
  | "rejects promptly when the call is aborted"
  | "stops the run on a wrong key (401 is fatal), without showing the key"
  | "calls 429 and 5xx retryable, 400 not retryable, none fatal"
  | "batch: runs to its end and joins outcomes by custom id, one request failing alone"
  | "batch: cancels a running batch"
  | "batch: find locates a batch whose create answer was lost, and only it"
  | "batch: itemBytes counts UTF-8 bytes and agrees with encodeItem";

/** The checks, by name. */
const CHECKS: Record<ProviderCheckName, Check> = {
  "declares the v1 contract": ({ provider }) => {
    assert.equal(provider.specificationVersion, "loom.provider.v1");
    assert.equal(typeof provider.name, "string");
    assert.equal(provider.capabilities.sync, true, "capabilities.sync (generate is required)");
    assert.equal(
      provider.capabilities.batch,
      provider.batch !== undefined,
      "capabilities.batch says whether there is a batch API",
    );
  },

  "answers a request with its text and token usage": async (ctx) => {
    const prompt = `conformance hello ${randomUUID()}`;
    const result = await ctx.within(ctx.provider.generate(ctx.request(prompt)), "generate");
    assert.equal(typeof result.text, "string");
    // The emulator answers with the prompt in the text: the message really was sent.
    assert.ok(result.text.includes(prompt), `the answer does not hold the prompt: ${result.text}`);
    assert.ok((result.usage?.inputTokens ?? 0) > 0, "usage.inputTokens is reported");
    assert.ok((result.usage?.outputTokens ?? 0) > 0, "usage.outputTokens is reported");
  },

  "rejects promptly when the call is aborted": async (ctx) => {
    const mark = `SLOW-${randomUUID()}`;
    ctx.emu.faults.add({
      match: { promptContains: mark },
      action: { kind: "slow", delayMs: 120_000 },
    });
    const controller = new AbortController();
    const call = ctx.provider.generate(ctx.request(mark), { signal: controller.signal });
    let settled = false;
    call.then(() => (settled = true), () => (settled = true));
    await sleep(50);
    assert.equal(
      settled,
      false,
      "the call settled before its (slow) answer came or it was aborted",
    );
    controller.abort();
    const started = Date.now();
    await assert.rejects(ctx.within(call, "an aborted generate"));
    const waited = Date.now() - started;
    assert.ok(waited < (ctx.options.timeoutMs ?? 5000), `the abort took ${waited} ms`);
  },

  "stops the run on a wrong key (401 is fatal), without showing the key": async (ctx) => {
    const wrong = `sk-wrong-${randomUUID()}`;
    const provider = await ctx.providerWithKey(wrong);
    try {
      await ctx.within(provider.generate(ctx.request("hello")), "generate with a wrong key");
      assert.fail("generate with a wrong key resolved");
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      const e = providerError(error, "HTTP 401");
      assert.equal(e.fatal, true, "a wrong key is fatal (no row can succeed)");
      assert.equal(e.retryable, false, "a wrong key is not retryable");
      assertNoSecret(error, [wrong, ctx.emu.apiKey], "HTTP 401");
    } finally {
      await provider.dispose?.();
    }
  },

  "calls 429 and 5xx retryable, 400 not retryable, none fatal": async (ctx) => {
    for (const status of [429, 500, 503]) {
      const e = providerError(await faultError(ctx, status), `HTTP ${status}`);
      assert.equal(e.retryable, true, `HTTP ${status} is retryable`);
      assert.equal(e.fatal, false, `HTTP ${status} is not fatal`);
    }
    const e = providerError(await faultError(ctx, 400), "HTTP 400");
    assert.equal(e.retryable, false, "HTTP 400 is not retryable");
  },

  "batch: runs to its end and joins outcomes by custom id, one request failing alone": async (
    ctx,
  ) => {
    const api = batchOf(ctx.provider);
    const items: BatchItem[] = [
      { customId: "ok-1", request: ctx.request("first batch prompt") },
      { customId: "bad-2", request: ctx.request(`second ${FAIL_MARK}`) },
      { customId: "ok-3", request: ctx.request("third: héllo ✓ 日本") },
    ];
    const handle = await ctx.within(api.submit(items, label("conformance")), "submit");
    assert.equal(typeof handle.id, "string");
    const seen = await untilEnded(ctx, api, handle);
    assert.ok(!TERMINAL.includes(seen[0]), `a new batch is not over yet (first state ${seen[0]})`);
    assert.equal(seen.at(-1), "completed");
    const outcomes = await ctx.within(
      outcomesOf(api, handle, items.map((i) => i.customId)),
      "results",
    );
    const byId = new Map(outcomes.map((o) => [o.customId, o]));
    assert.equal(byId.size, outcomes.length, "one outcome per request");
    assert.deepEqual([...byId.keys()].sort(), ["bad-2", "ok-1", "ok-3"]);
    for (const item of [items[0], items[2]]) {
      const o = byId.get(item.customId)!;
      assert.ok("result" in o, `${item.customId} has an answer: ${JSON.stringify(o)}`);
      assert.ok(
        o.result.text.includes(item.request.messages[0].content),
        `${item.customId}'s answer is its own request's: ${o.result.text}`,
      );
    }
    const bad = byId.get("bad-2")!;
    assert.ok("error" in bad && bad.kind === "failed", `bad-2 failed: ${JSON.stringify(bad)}`);
  },

  "batch: cancels a running batch": async (ctx) => {
    const api = batchOf(ctx.provider);
    const items = [1, 2].map((n) => ({ customId: `c${n}`, request: ctx.request(`cancel ${n}`) }));
    const handle = await ctx.within(api.submit(items, label("cancel")), "submit");
    await ctx.within(api.cancel(handle), "cancel");
    const seen = await untilEnded(ctx, api, handle);
    assert.equal(seen.at(-1), "cancelled", `states seen: ${seen.join(", ")}`);
    const outcomes = await ctx.within(outcomesOf(api, handle, ["c1", "c2"]), "results");
    for (const o of outcomes) {
      assert.ok(!("error" in o) || o.kind === "cancelled", `not run, so cancelled: ${o.customId}`);
    }
  },

  "batch: find locates a batch whose create answer was lost, and only it": async (ctx) => {
    const api = batchOf(ctx.provider);
    assert.ok(api.find, "a batch API has find (how a lost create is adopted, not paid twice)");
    const path = ctx.options.batchCreatePath ?? CREATE_PATHS[ctx.options.emulator];
    assert.ok(path, `say batchCreatePath: the ${ctx.options.emulator} emulator has no batches`);
    const after = new Date(ctx.emu.clock.now() - 1000).toISOString();
    // Another job's batch, of two requests, exists: find must not answer it.
    const others = ["o1", "o2"].map((customId) => ({ customId, request: ctx.request(customId) }));
    await ctx.within(api.submit(others, label("other")), "submit");
    const wanted = label("lost", 2);
    ctx.emu.faults.add({
      match: { method: "POST", path, first: 1 },
      action: { kind: "lost", answer: "reset" },
    });
    const lost = [{ customId: "f1", request: ctx.request("find me") }];
    await assert.rejects(ctx.within(api.submit(lost, wanted), "submit"));
    const creates = ctx.emu.log.entries.filter((r) =>
      r.method === "POST" && (typeof path === "string" ? r.path.includes(path) : path.test(r.path))
    );
    assert.equal(creates.length, 2, "the provider never creates a batch again on its own");
    const found = await ctx.within(api.find(wanted, { after, requests: 1 }), "find");
    assert.ok(found, "find could look back far enough on a fresh emulator");
    assert.equal(found.length, 1, `find answers the lost batch only: ${JSON.stringify(found)}`);
    if (ctx.options.labelsBatches !== false) assert.equal(found[0].exact, true, "found by label");
    // It is the lost batch: it runs the lost request.
    await untilEnded(ctx, api, found[0].handle);
    const outcomes = await ctx.within(outcomesOf(api, found[0].handle, ["f1"]), "results");
    assert.deepEqual(outcomes.map((o) => o.customId), ["f1"]);
  },

  "batch: itemBytes counts UTF-8 bytes and agrees with encodeItem": (ctx) => {
    const api = batchOf(ctx.provider);
    assert.ok(Number.isInteger(api.limits.maxRequests) && api.limits.maxRequests > 0);
    assert.ok(Number.isInteger(api.limits.maxBytes) && api.limits.maxBytes > 0);
    const item = (customId: string, prompt: string): BatchItem => ({
      customId,
      request: ctx.request(prompt),
    });
    const short = item("a", "short");
    const wide = item("b", "日本語".repeat(100)); // 300 characters, 900 UTF-8 bytes
    const bytes = (i: BatchItem) => api.itemBytes(i);
    for (const i of [short, wide]) assert.ok(Number.isInteger(bytes(i)) && bytes(i) > 0);
    assert.ok(bytes(wide) >= bytes(short) + 895, "itemBytes counts UTF-8 bytes, not characters");
    if (!api.encodeItem) return;
    for (const i of [short, wide, item("c", 'quotes " and \\ and\nnewline')]) {
      const line = api.encodeItem(i);
      assert.ok(!line.includes("\n"), "encodeItem gives one line");
      assert.equal(bytes(i), new TextEncoder().encode(line).length + 1, "itemBytes = line + 1");
    }
  },
};

/** The checks' names, in the order the suite runs them. */
export const PROVIDER_CHECK_NAMES: readonly ProviderCheckName[] = Object.keys(
  CHECKS,
) as ProviderCheckName[];

/**
 * Runs one check: starts the emulator, creates the provider, checks, then disposes the provider
 * and stops the emulator. Resolves `"skipped"` for a batch check of a provider without batches;
 * rejects with the failed assertion.
 */
export async function runProviderCheck(
  options: ProviderConformanceOptions,
  check: ProviderCheckName,
): Promise<"passed" | "skipped"> {
  const emu = await startEmulator({
    models: "any",
    openaiSpec: false,
    schedule: { advance: "manual" },
    batches: [{ failPromptContains: FAIL_MARK }],
    apiKey: `sk-loom-conformance-${randomUUID()}`,
    ...options.emulatorOptions,
    provider: options.emulator,
  });
  const timeoutMs = options.timeoutMs ?? 5000;
  let provider: ProviderV1 | undefined;
  try {
    provider = await options.create({ baseURL: emu.baseURL, apiKey: emu.apiKey });
    const ctx: CheckContext = {
      emu,
      provider,
      options,
      providerWithKey: async (apiKey) => await options.create({ baseURL: emu.baseURL, apiKey }),
      request: (prompt) => ({
        model: options.model,
        messages: [{ role: "user", content: prompt }],
        params: { max_tokens: 64 },
      }),
      within(promise, what) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new assert.AssertionError({ message: `${what} took over ${timeoutMs} ms` })),
            timeoutMs,
          );
        });
        return Promise.race([promise, late]).finally(() => clearTimeout(timer));
      },
    };
    await CHECKS[check](ctx);
    return "passed";
  } catch (error) {
    if (error instanceof Skip) return "skipped";
    throw error;
  } finally {
    await provider?.dispose?.();
    await emu.stop();
  }
}

/** Defines the conformance tests for one provider. */
export function providerConformance(options: ProviderConformanceOptions): void {
  describe(`${options.name ?? options.emulator} provider conformance`, () => {
    for (const check of PROVIDER_CHECK_NAMES) {
      it(check, async (t) => {
        if (await runProviderCheck(options, check) === "skipped") {
          t.skip("the provider has no batch API");
        }
      });
    }
  });
}
