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
 * The optional parts are checked when the provider has them (their checks skip otherwise):
 * - `resultChunks`: arrays holding the same outcomes as `results` (in every batch check);
 * - `submitStream`: the items read to their end before the batch is created (and before
 *   `onCreate`), then run; with `encodeItem`, a source's `lines` sent instead of its items, the
 *   chunks copied (the suite overwrites each chunk's buffer, as the core's spool does);
 * - `deleteUpload`: a submit stopped at its create then retried with its upload reuses it (no
 *   second upload), the batch runs, `deleteUpload` sends the delete and a second delete of the
 *   gone upload resolves; `deleteUploadCommand` names the upload and never the key. Skipped
 *   when `submit` uploads nothing for a three-request batch (one sent inline);
 * - `countTokens`: the count equals the input tokens `generate` reports for the same request
 *   (system prompt included) and generates nothing; a wrong key is fatal, 429 and 5xx are
 *   retryable, an aborted count rejects promptly, no message holds the key. A provider whose
 *   `capabilities.tokens` is true must have it.
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
  BatchItemSource,
  BatchLabel,
  BatchOutcome,
  BatchState,
  BatchUpload,
  CallOptions,
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
  openrouter: /^\/api\/v1\/batches$/,
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
    for await (const chunk of api.resultChunks(handle, customIds)) {
      assert.ok(Array.isArray(chunk), `resultChunks yields arrays, not ${JSON.stringify(chunk)}`);
      chunked.push(...chunk);
    }
    const key = (o: BatchOutcome) => JSON.stringify(o);
    assert.deepEqual(
      chunked.map(key).sort(),
      all.map(key).sort(),
      "resultChunks yields the same outcomes as results",
    );
  }
  return all;
}

/** Three requests for a batch: two that succeed (one not ASCII) and one that fails alone. */
const threeItems = (ctx: CheckContext): BatchItem[] => [
  { customId: "ok-1", request: ctx.request("first batch prompt") },
  { customId: "bad-2", request: ctx.request(`second ${FAIL_MARK}`) },
  { customId: "ok-3", request: ctx.request("third: héllo ✓ 日本") },
];

/** Asserts the outcomes of {@link threeItems}: one each, the answers their own, `bad-2` failed. */
function assertJoined(outcomes: readonly BatchOutcome[], items: readonly BatchItem[]): void {
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

/** The path of the request that creates a batch (a fault rule's path), if known. */
const createPath = (ctx: CheckContext) =>
  ctx.options.batchCreatePath ?? CREATE_PATHS[ctx.options.emulator];

/** How many batch creates the emulator has seen (0 when their path is unknown). */
function createsSeen(ctx: CheckContext): number {
  const path = createPath(ctx);
  if (path === undefined) return 0;
  return ctx.emu.log.entries.filter((r) =>
    r.method === "POST" && (typeof path === "string" ? r.path.includes(path) : path.test(r.path))
  ).length;
}

/** Skips the check when the provider has no countTokens, unless it claims to count tokens. */
function tokensOf(provider: ProviderV1): void {
  if (provider.countTokens) return;
  assert.equal(
    provider.capabilities.tokens,
    false,
    "capabilities.tokens says the provider counts tokens, but it has no countTokens",
  );
  throw new Skip("the provider does not count tokens");
}

/**
 * `items` as a {@link BatchItemSource}, with `lines` when `encode` is given, and a record of how
 * it was read. The lines come as the core's spool gives them: whole lines in chunks that share
 * one buffer, overwritten once the next chunk is asked for (so a provider that keeps a chunk
 * without copying it sends garbage). `createsBeforeEnd` counts the batch creates the emulator saw
 * before the stream ended.
 */
function sourceOf(
  ctx: CheckContext,
  items: readonly BatchItem[],
  encode?: (item: BatchItem) => string,
) {
  const read = { itemsStarted: 0, itemsEnded: 0, linesEnded: 0, createsBeforeEnd: 0 };
  const creates = () => createsSeen(ctx);
  const before = creates();
  const source: BatchItemSource = {
    count: items.length,
    async *items() {
      read.itemsStarted++;
      yield* items;
      read.createsBeforeEnd = creates() - before;
      read.itemsEnded++;
    },
    ...(encode && {
      async *lines() {
        const encoder = new TextEncoder();
        const chunks = [items.slice(0, 2), items.slice(2)].map((part) =>
          encoder.encode(part.map((item) => `${encode(item)}\n`).join(""))
        );
        const buffer = new Uint8Array(Math.max(...chunks.map((c) => c.length)));
        for (const chunk of chunks) {
          buffer.fill(0);
          buffer.set(chunk);
          yield buffer.subarray(0, chunk.length);
        }
        buffer.fill(0);
        read.createsBeforeEnd = creates() - before;
        read.linesEnded++;
      },
    }),
  };
  return { source, read };
}

const label = (job: string, shard = 0): BatchLabel => ({
  job,
  shard,
  name: `loom-${job}-${shard}`,
});

/** A call the provider makes for one request: `generate`, or `countTokens`. */
interface Call {
  readonly name: string;
  run(provider: ProviderV1, request: GenerateRequest, options?: CallOptions): Promise<unknown>;
}

const GENERATE: Call = { name: "generate", run: (p, r, o) => p.generate(r, o) };
const COUNT_TOKENS: Call = { name: "countTokens", run: (p, r, o) => p.countTokens!(r, o) };

/** Rejects with the status fault's error when the next request carrying `mark` meets `status`. */
async function faultError(ctx: CheckContext, status: number, call = GENERATE): Promise<unknown> {
  const mark = `FAULT-${status}-${randomUUID()}`;
  ctx.emu.faults.add({
    match: { promptContains: mark, first: 1 },
    action: { kind: "status", status },
  });
  const what = `${call.name}, HTTP ${status}`;
  try {
    await ctx.within(call.run(ctx.provider, ctx.request(`${mark} please`)), what);
  } catch (error) {
    assertNoSecret(error, [ctx.emu.apiKey], what);
    return error;
  }
  assert.fail(`${what}: ${call.name} resolved although the provider answered ${status}`);
}

/** Asserts that 429 and 5xx are retryable and not fatal. */
async function assertTransientRetryable(ctx: CheckContext, call: Call): Promise<void> {
  for (const status of [429, 500, 503]) {
    const e = providerError(await faultError(ctx, status, call), `${call.name}, HTTP ${status}`);
    assert.equal(e.retryable, true, `${call.name}: HTTP ${status} is retryable`);
    assert.equal(e.fatal, false, `${call.name}: HTTP ${status} is not fatal`);
  }
}

/** Asserts that the call, aborted while its answer is slow to come, rejects promptly. */
async function assertAbortable(ctx: CheckContext, call: Call): Promise<void> {
  const mark = `SLOW-${randomUUID()}`;
  ctx.emu.faults.add({
    match: { promptContains: mark },
    action: { kind: "slow", delayMs: 120_000 },
  });
  const controller = new AbortController();
  const pending = call.run(ctx.provider, ctx.request(mark), { signal: controller.signal });
  let settled = false;
  pending.then(() => (settled = true), () => (settled = true));
  await sleep(50);
  assert.equal(
    settled,
    false,
    `${call.name}: the call settled before its (slow) answer came or it was aborted`,
  );
  controller.abort();
  const started = Date.now();
  await assert.rejects(ctx.within(pending, `an aborted ${call.name}`));
  const waited = Date.now() - started;
  assert.ok(waited < (ctx.options.timeoutMs ?? 5000), `${call.name}: the abort took ${waited} ms`);
}

/** Asserts that a wrong key is fatal, not retryable, and shown in no message. */
async function assertWrongKeyFatal(ctx: CheckContext, call: Call): Promise<void> {
  const wrong = `sk-wrong-${randomUUID()}`;
  const provider = await ctx.providerWithKey(wrong);
  const what = `${call.name} with a wrong key`;
  try {
    await ctx.within(call.run(provider, ctx.request("hello")), what);
    assert.fail(`${what} resolved`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    const e = providerError(error, `${call.name}, HTTP 401`);
    assert.equal(e.fatal, true, `${what}: a wrong key is fatal (no row can succeed)`);
    assert.equal(e.retryable, false, `${what}: a wrong key is not retryable`);
    assertNoSecret(error, [wrong, ctx.emu.apiKey], `${call.name}, HTTP 401`);
  } finally {
    await provider.dispose?.();
  }
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
  | "batch: itemBytes counts UTF-8 bytes and agrees with encodeItem"
  | "batch: resultChunks yields what results yields, in arrays"
  | "batch: submitStream reads its items to their end before the create, and runs them"
  | "batch: submitStream sends the source's lines instead of its items, copying what it keeps"
  | "batch: a retried submit reuses its upload, and deleteUpload deletes it (gone already is success)"
  | "tokens: countTokens counts what generate is billed for, without generating"
  | "tokens: countTokens fails as generate does (wrong key fatal, 429 and 5xx retryable, abortable)";

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

  "rejects promptly when the call is aborted": (ctx) => assertAbortable(ctx, GENERATE),

  "stops the run on a wrong key (401 is fatal), without showing the key": (ctx) =>
    assertWrongKeyFatal(ctx, GENERATE),

  "calls 429 and 5xx retryable, 400 not retryable, none fatal": async (ctx) => {
    await assertTransientRetryable(ctx, GENERATE);
    const e = providerError(await faultError(ctx, 400), "HTTP 400");
    assert.equal(e.retryable, false, "HTTP 400 is not retryable");
  },

  "batch: runs to its end and joins outcomes by custom id, one request failing alone": async (
    ctx,
  ) => {
    const api = batchOf(ctx.provider);
    const items = threeItems(ctx);
    const handle = await ctx.within(api.submit(items, label("conformance")), "submit");
    assert.equal(typeof handle.id, "string");
    const seen = await untilEnded(ctx, api, handle);
    assert.ok(!TERMINAL.includes(seen[0]), `a new batch is not over yet (first state ${seen[0]})`);
    assert.equal(seen.at(-1), "completed");
    const outcomes = await ctx.within(
      outcomesOf(api, handle, items.map((i) => i.customId)),
      "results",
    );
    assertJoined(outcomes, items);
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
    const path = createPath(ctx);
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
    assert.equal(createsSeen(ctx), 2, "the provider never creates a batch again on its own");
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

  "batch: resultChunks yields what results yields, in arrays": async (ctx) => {
    const api = batchOf(ctx.provider);
    if (!api.resultChunks) throw new Skip("the batch API has no resultChunks");
    const items = threeItems(ctx);
    const handle = await ctx.within(api.submit(items, label("chunks")), "submit");
    await untilEnded(ctx, api, handle);
    // outcomesOf reads both and compares them.
    const outcomes = await ctx.within(
      outcomesOf(api, handle, items.map((i) => i.customId)),
      "results",
    );
    assertJoined(outcomes, items);
  },

  "batch: submitStream reads its items to their end before the create, and runs them": async (
    ctx,
  ) => {
    const api = batchOf(ctx.provider);
    if (!api.submitStream) throw new Skip("the batch API has no submitStream");
    const items = threeItems(ctx);
    const { source, read } = sourceOf(ctx, items);
    let endedAtCreate: boolean | undefined;
    const handle = await ctx.within(
      api.submitStream(source, label("stream"), {
        onCreate: async () => void (endedAtCreate = read.itemsEnded > 0),
      }),
      "submitStream",
    );
    assert.ok(read.itemsEnded > 0, "submitStream reads the items to their end");
    assert.notEqual(endedAtCreate, false, "the items were read to their end before onCreate");
    assert.equal(read.createsBeforeEnd, 0, "no batch was created before the items were all read");
    await untilEnded(ctx, api, handle);
    assertJoined(
      await ctx.within(outcomesOf(api, handle, items.map((i) => i.customId)), "results"),
      items,
    );
  },

  "batch: submitStream sends the source's lines instead of its items, copying what it keeps":
    async (ctx) => {
      const api = batchOf(ctx.provider);
      if (!api.submitStream || !api.encodeItem) {
        throw new Skip("the batch API has no submitStream with encodeItem (lines come only then)");
      }
      const items = threeItems(ctx);
      const { source, read } = sourceOf(ctx, items, api.encodeItem.bind(api));
      let endedAtCreate: boolean | undefined;
      const handle = await ctx.within(
        api.submitStream(source, label("lines"), {
          onCreate: async () => void (endedAtCreate = read.linesEnded > 0),
        }),
        "submitStream",
      );
      assert.equal(read.itemsStarted, 0, "given lines, submitStream sends them, not the items");
      assert.ok(read.linesEnded > 0, "submitStream reads the lines to their end");
      assert.notEqual(endedAtCreate, false, "the lines were read to their end before onCreate");
      assert.equal(read.createsBeforeEnd, 0, "no batch was created before the lines were read");
      await untilEnded(ctx, api, handle);
      // A provider that kept the chunks without copying them sent the overwritten buffer.
      assertJoined(
        await ctx.within(outcomesOf(api, handle, items.map((i) => i.customId)), "results"),
        items,
      );
    },

  "batch: a retried submit reuses its upload, and deleteUpload deletes it (gone already is success)":
    async (ctx) => {
      const api = batchOf(ctx.provider);
      if (!api.deleteUpload) throw new Skip("the batch API has no deleteUpload");
      const items = threeItems(ctx);
      const uploads: BatchUpload[] = [];
      const onUploaded = async (upload: BatchUpload) => void uploads.push(upload);
      // The first attempt stops at its create, as a submit does when the create cannot be sent.
      let stopped = false;
      const stop = () => {
        stopped = true;
        return Promise.reject(new Error("conformance: the create is not sent this time"));
      };
      try {
        await ctx.within(
          api.submit(items, label("upload"), { onUploaded, onCreate: stop }),
          "submit",
        );
      } catch (error) {
        if (!stopped) throw error;
      }
      if (uploads.length === 0) {
        throw new Skip(
          "submit uploaded nothing for a small batch (sent inline): nothing to delete",
        );
      }
      assert.equal(uploads.length, 1, "one upload for one submit");
      const [upload] = uploads;
      const handle = await ctx.within(
        api.submit(items, label("upload"), { upload, onUploaded }),
        "submit again with the upload",
      );
      assert.equal(uploads.length, 1, "a submit given an earlier attempt's upload does not upload");
      await untilEnded(ctx, api, handle);
      assertJoined(
        await ctx.within(outcomesOf(api, handle, items.map((i) => i.customId)), "results"),
        items,
      );
      if (api.deleteUploadCommand) {
        const command = api.deleteUploadCommand(upload);
        assert.equal(typeof command, "string", "deleteUploadCommand gives a command");
        assert.ok(!command.includes(ctx.emu.apiKey), `the command shows the API key: ${command}`);
        for (const value of Object.values(upload)) {
          assert.ok(command.includes(value), `the command names the upload (${value}): ${command}`);
        }
      }
      const before = ctx.emu.log.entries.length;
      await ctx.within(api.deleteUpload(upload), "deleteUpload");
      const deletes = ctx.emu.log.entries.slice(before).filter((e) =>
        e.method === "DELETE" && e.status >= 200 && e.status < 300
      );
      assert.equal(deletes.length, 1, "deleteUpload deletes the upload (a DELETE the API accepts)");
      await assert.doesNotReject(
        ctx.within(api.deleteUpload(upload), "deleteUpload of an upload deleted already"),
        "deleting an upload that is gone already succeeds",
      );
    },

  "tokens: countTokens counts what generate is billed for, without generating": async (ctx) => {
    tokensOf(ctx.provider);
    const requests: GenerateRequest[] = [
      ctx.request("count these five words"),
      { ...ctx.request("and count me: héllo 日本 ✓"), system: "Answer in one short sentence." },
    ];
    for (const request of requests) {
      const start = ctx.emu.log.entries.length;
      const counted = await ctx.within(ctx.provider.countTokens!(request), "countTokens");
      const counting = ctx.emu.log.entries.slice(start);
      assert.ok(Number.isInteger(counted) && counted > 0, `countTokens gave ${counted}`);
      const result = await ctx.within(ctx.provider.generate(request), "generate");
      const generating = new Set(
        ctx.emu.log.entries.slice(start + counting.length).map((e) => e.path),
      );
      assert.ok(
        !counting.some((e) => generating.has(e.path)),
        `countTokens generates nothing (it asked ${counting.map((e) => e.path).join(", ")})`,
      );
      assert.equal(
        counted,
        result.usage?.inputTokens,
        `countTokens counts the input tokens generate is billed for${
          request.system ? " (the system prompt too)" : ""
        }`,
      );
    }
  },

  "tokens: countTokens fails as generate does (wrong key fatal, 429 and 5xx retryable, abortable)":
    async (ctx) => {
      tokensOf(ctx.provider);
      await assertWrongKeyFatal(ctx, COUNT_TOKENS);
      await assertTransientRetryable(ctx, COUNT_TOKENS);
      await assertAbortable(ctx, COUNT_TOKENS);
    },
};

/** The checks' names, in the order the suite runs them. */
export const PROVIDER_CHECK_NAMES: readonly ProviderCheckName[] = Object.keys(
  CHECKS,
) as ProviderCheckName[];

/**
 * Runs one check: starts the emulator, creates the provider, checks, then disposes the provider
 * and stops the emulator. Resolves `"skipped"` for a check of an optional part the provider does
 * not have (a batch check without a batch API, say); rejects with the failed assertion.
 */
export async function runProviderCheck(
  options: ProviderConformanceOptions,
  check: ProviderCheckName,
): Promise<"passed" | "skipped"> {
  return typeof await runCheck(options, check) === "string" ? "skipped" : "passed";
}

/** {@link runProviderCheck}, resolving with why the check was skipped (or undefined). */
async function runCheck(
  options: ProviderConformanceOptions,
  check: ProviderCheckName,
): Promise<string | undefined> {
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
    return undefined;
  } catch (error) {
    if (error instanceof Skip) return error.message;
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
        const skipped = await runCheck(options, check);
        if (skipped !== undefined) t.skip(skipped);
      });
    }
  });
}
