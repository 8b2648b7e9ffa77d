/**
 * Loom's own limits in sync mode, end to end through `runJob`: concurrency that backs off under a
 * storm of 429s (measured in a test provider, at the provider boundary, and at the emulator),
 * and `sync.rpm` / `sync.tpm` held at the emulator, retried attempts included.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LoomProviderError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { Registry } from "../../../core/plugins/registry.ts";
import { runJob } from "../../../core/commands/run.ts";
import { estimateTokens } from "../../../core/run/limits.ts";
import type { RetryPolicy } from "../../../core/run/retry.ts";
import type { GenerateRequest, GenerateResult, ProviderV1 } from "../../../core/spec/provider.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { type Emulator, type LoggedRequest, startEmulator } from "../../../emulator/mod.ts";
import openaiPlugin from "../openai/mod.ts";
import { FAST_RETRY, useEmulator } from "./test-emulator.ts";

const openai = useEmulator({ provider: "openai" });
const anthropic = useEmulator({ provider: "anthropic" });

/** Fast, with attempts to spare: in these runs a row may meet several 429s and must still succeed. */
const RETRY: RetryPolicy = { ...FAST_RETRY, maxAttempts: 20 };

/** `count` rows with prompts of equal length (`row 01`, `row 02`, …), so equal token estimates. */
const prompts = (count: number) =>
  Array.from({ length: count }, (_, i) => `row ${String(i + 1).padStart(2, "0")}`);

/** Writes `in.csv` and a sync job; `head` is the job's provider lines, `sync` its sync settings. */
async function writeJob(
  rows: readonly string[],
  head: string,
  sync: string,
  params = "{ max_tokens: 50 }",
) {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\n${head}\nmode: sync\nparams: ${params}\n` +
      `output: { path: out.csv }\nsync: { cache: false, ${sync} }\n`,
  );
  return { dir, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

/**
 * The AdaptiveGate's cap after `k` successes since it was last cut to 1: it grows by one after
 * `cap` successes in a row (1, then 2 more, then 3 more, …), so it is 1 + m for the largest m
 * with 1 + 2 + … + m <= k.
 */
function capAfter(k: number): number {
  let m = 0;
  while (((m + 1) * (m + 2)) / 2 <= k) m++;
  return 1 + m;
}

/**
 * A one-shot barrier: `arrive()` returns once `count` callers have arrived. A broken gate that
 * never lets `count` calls in together would hang the test, so the wait gives up after a while
 * (the test then fails on the concurrency it saw, instead of timing out).
 */
function barrier(count: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let timer: ReturnType<typeof setTimeout> | undefined;
  return async () => {
    if (++arrived === count) open();
    timer ??= setTimeout(open, 10_000);
    await opened;
    clearTimeout(timer);
  };
}

/** What a counting provider saw: for each call, how many calls were in flight and how many had succeeded when it started. */
interface CallStart {
  readonly call: number;
  readonly inFlight: number;
  readonly succeeded: number;
}

/** Counts calls of `generate` in flight; the first `workers` calls wait until all of them are in. */
function counting(
  workers: number,
  inner: (request: GenerateRequest, call: number) => Promise<GenerateResult>,
) {
  const starts: CallStart[] = [];
  const firstWave = barrier(workers);
  let calls = 0;
  let inFlight = 0;
  let succeeded = 0;
  const generate = async (request: GenerateRequest): Promise<GenerateResult> => {
    const call = ++calls;
    inFlight++;
    starts.push({ call, inFlight, succeeded });
    try {
      if (call <= workers) await firstWave();
      const result = await inner(request, call);
      succeeded++;
      return result;
    } finally {
      inFlight--;
    }
  };
  return { starts, generate };
}

const WORKERS = 16;

describe("a 429 storm makes the concurrency back off", () => {
  it("in the core: 16 calls at first, one at a time while the storm lasts, then growing back slowly", async () => {
    // A provider that answers 429 to its first STORM calls: the first wave of 16 all at once,
    // then every retry until the storm is over.
    const STORM = 32;
    const ROWS = 48;
    const { starts, generate } = counting(WORKERS, async (request, call) => {
      await sleep(2); // long enough for calls to overlap, if the gate let them
      if (call <= STORM) {
        throw new LoomProviderError("storm: 429 Too Many Requests", {
          status: 429,
          retryable: true,
        });
      }
      return { text: request.messages[0].content };
    });
    const registry = new Registry();
    registry.register({
      apiVersion: 1,
      kind: "provider",
      name: "storm",
      create: (): ProviderV1 => ({
        specificationVersion: "loom.provider.v1",
        name: "storm",
        capabilities: { sync: true, batch: false, tokens: false },
        generate,
      }),
    });
    const { dir, loaded } = await writeJob(
      prompts(ROWS),
      "provider: storm\nmodel: m",
      `workers: ${WORKERS}`,
    );
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home") },
      cwd: dir,
      registry,
      retry: RETRY,
    });
    assert.deepEqual([summary.rows, summary.ok, summary.errors], [ROWS, ROWS, 0]);
    assert.equal(starts.length, STORM + ROWS);

    const peak = (from: number, to: number) =>
      Math.max(...starts.slice(from, to).map((s) => s.inFlight));
    assert.equal(peak(0, WORKERS), WORKERS, "the first wave ran 16 calls at once");
    // Sixteen 429s cut the cap to 1 (16 → 8 → 4 → 2 → 1), and further 429s keep it there.
    assert.deepEqual(
      starts.slice(WORKERS, STORM).map((s) => s.inFlight),
      Array(STORM - WORKERS).fill(1),
    );
    // After the storm the cap grows back one step per `cap` successes.
    for (const s of starts.slice(STORM)) {
      assert.ok(
        s.inFlight <= capAfter(s.succeeded),
        `call ${s.call}: ${s.inFlight} in flight after ${s.succeeded} successes`,
      );
    }
    const recovered = peak(STORM, starts.length);
    assert.ok(
      recovered >= 2 && recovered <= capAfter(ROWS) && recovered < WORKERS,
      `peak after the storm: ${recovered}`,
    );
  });

  it("at the emulator: through the openai SDK, no more requests in flight after the storm than the gate allows", async () => {
    // Its own emulator, whose answers take a little while, so requests the gate lets through
    // together are in flight together at the emulator.
    const emu = await startEmulator({ provider: "openai", latencyMs: 10 });
    try {
      const trace = traceInFlight(emu);
      emu.faults.add({
        name: "storm",
        match: { first: WORKERS },
        action: { kind: "status", status: 429 },
      });
      const ROWS = 32;
      const registry = new Registry();
      let starts: CallStart[] = [];
      registry.register({
        apiVersion: 1,
        kind: "provider",
        name: "counted-openai",
        apiKey: { envVars: () => ["OPENAI_API_KEY"] },
        // The real openai provider, counted at its boundary.
        async create(options, context): Promise<ProviderV1> {
          const inner = await openaiPlugin.create(options, context);
          const counted = counting(WORKERS, (request) => inner.generate(request));
          starts = counted.starts;
          return { ...inner, name: "counted-openai", generate: counted.generate };
        },
      });
      const { dir, loaded } = await writeJob(
        prompts(ROWS),
        `provider: counted-openai\nprovider_options: { base_url: "${emu.baseURL}" }\nmodel: gpt-4o-mini`,
        `workers: ${WORKERS}`,
      );
      const summary = await runJob(loaded, {
        env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey },
        cwd: dir,
        registry,
        retry: RETRY,
      });
      assert.deepEqual([summary.ok, summary.errors], [ROWS, 0]);

      // The first wave: 16 calls in flight together in Loom, so the first 16 requests the
      // emulator saw were 16 different rows, all answered 429.
      assert.equal(Math.max(...starts.slice(0, WORKERS).map((s) => s.inFlight)), WORKERS);
      const calls = emu.log.entries;
      const opening = calls.slice(0, WORKERS);
      assert.ok(opening.every((e) => e.status === 429));
      assert.equal(new Set(opening.map(promptOf)).size, WORKERS);
      assert.equal(calls.length, ROWS + WORKERS);
      assert.ok(calls.slice(WORKERS).every((e) => e.status === 200));

      // After the storm the emulator never had more requests in flight than the gate's cap
      // allows after the successes answered so far. (A request is in flight at the emulator only
      // while Loom holds its slot: it arrives after the slot is taken and is answered before the
      // slot is freed, so this bound needs no timing.)
      const after = trace.filter((t) => t.seq > WORKERS);
      for (const t of after) {
        assert.ok(
          t.inFlight <= capAfter(t.answered200),
          `request ${t.seq}: ${t.inFlight} in flight after ${t.answered200} answers`,
        );
      }
      const peakAfter = Math.max(...after.map((t) => t.inFlight));
      assert.ok(
        peakAfter <= capAfter(ROWS) && peakAfter < WORKERS,
        `peak in flight at the emulator after the storm: ${peakAfter}`,
      );
      for (const s of starts.slice(WORKERS)) {
        assert.ok(s.inFlight <= capAfter(s.succeeded), JSON.stringify(s));
      }
    } finally {
      await emu.stop();
    }
  });
});

/** The prompt a logged request carried. */
function promptOf(entry: LoggedRequest): string {
  const body = entry.body as { messages?: Array<{ content: string }> } | undefined;
  return body?.messages?.at(-1)?.content ?? "";
}

/**
 * Follows the emulator's requests from arrival to answer. The log records arrival (`receivedMs`)
 * but not when the answer went out, so this wraps `log.add` to note, in one sequence, when each
 * entry is added (on arrival) and when its `status` is set (as the answer is sent). For each
 * request: how many were in flight when it arrived (itself included), and how many 200 answers
 * had gone out by then.
 */
function traceInFlight(emu: Emulator) {
  const out: Array<{ seq: number; inFlight: number; answered200: number }> = [];
  const pending = new Set<number>();
  let answered200 = 0;
  const log = emu.log;
  const add = log.add.bind(log);
  log.add = (fields) => {
    const entry = add(fields);
    let status = entry.status;
    Object.defineProperty(entry, "status", {
      enumerable: true,
      get: () => status,
      set: (value: number) => {
        status = value;
        if (pending.delete(entry.seq) && value === 200) answered200++;
      },
    });
    pending.add(entry.seq);
    out.push({ seq: entry.seq, inFlight: pending.size, answered200 });
    return entry;
  };
  return out;
}

/**
 * Checks request arrivals at the emulator against RatePacer's budget (core/run/limits.ts). The
 * pacer gives each request a start no earlier than the previous reservation's start plus that
 * request's occupancy: PACE_MARGIN (1.005) × 60 000 ms / rpm, or 1.005 × tokens × 60 000 ms /
 * tpm. So among any requests whose reserved starts lie within a span, the span is at least the
 * sum of their occupancies less the last one's. A request reaches the emulator at or after its
 * reserved start, and (the one assumption) at most JITTER ms after it; a request arriving in
 * [a, b] was therefore reserved in [a - JITTER, b]. Hence, for any window [a_i, a_j] of sorted
 * arrivals: sum(occupancy) - max(occupancy) <= a_j - a_i + JITTER. JITTER covers timers firing
 * late, the SDK building the request, the loopback hop and the emulator parsing it (on a loaded
 * machine), plus a millisecond or two for receivedMs (Date.now) against the pacer's
 * performance.now. It is small against the runs below (~2 s, 80 ms a slot): dropping the retried
 * attempts from the pacing, or not pacing, breaks the bound by far more.
 */
const JITTER = 300;

function checkPacing(arrivals: ReadonlyArray<{ ms: number; occupancyMs: number }>) {
  const sorted = [...arrivals].sort((a, b) => a.ms - b.ms);
  for (let i = 0; i < sorted.length; i++) {
    let sum = 0;
    let max = 0;
    for (let j = i; j < sorted.length; j++) {
      sum += sorted[j].occupancyMs;
      max = Math.max(max, sorted[j].occupancyMs);
      const span = sorted[j].ms - sorted[i].ms;
      assert.ok(
        sum - max <= span + JITTER,
        `${j - i + 1} requests arrived within ${span} ms, but their budget needs ${
          Math.round(sum - max)
        } ms (+${JITTER} ms allowance)`,
      );
    }
  }
}

/** Tokens of a logged request as Loom estimates them, from the body the emulator received. */
function tokensOf(entry: LoggedRequest): number {
  const body = entry.body as {
    system?: string;
    messages: Array<{ content: string }>;
    max_tokens?: number;
    max_completion_tokens?: number;
  };
  return estimateTokens(
    [body.system ?? "", ...body.messages.map((m) => m.content)],
    body.max_tokens ?? body.max_completion_tokens,
  );
}

/** 429s for every other request among the first 24: twelve retried attempts in the run. */
const SOME_429S = {
  name: "429",
  match: { every: 2, first: 24 },
  action: { kind: "status" as const, status: 429 },
};
const RETRIED = 12;

describe("rate limits hold at the emulator, retries included", () => {
  it("sync.rpm: no window holds more requests than the pacer's budget", async () => {
    const { emu } = openai;
    emu.faults.add(SOME_429S);
    const ROWS = 16;
    const RPM = 750; // one start per 80.4 ms: 28 requests take about 2.2 s
    const { dir, loaded } = await writeJob(
      prompts(ROWS),
      `provider: openai\nprovider_options: { base_url: "${emu.baseURL}" }\nmodel: gpt-4o-mini`,
      `workers: 8, rpm: ${RPM}`,
    );
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey },
      cwd: dir,
      retry: RETRY,
    });
    assert.deepEqual([summary.ok, summary.errors], [ROWS, 0]);
    const calls = emu.log.find("POST /v1/chat/completions");
    assert.equal(calls.length, ROWS + RETRIED);
    assert.equal(calls.filter((e) => e.status === 429).length, RETRIED);
    checkPacing(calls.map((e) => ({ ms: e.receivedMs!, occupancyMs: (1.005 * 60_000) / RPM })));
  });

  it("sync.tpm: no window holds more tokens than the pacer's budget", async () => {
    const { emu } = anthropic;
    emu.faults.add(SOME_429S);
    const ROWS = 16;
    // Each request is estimated at 52 tokens (6 characters → 2, plus max_tokens 50): at 39,000
    // tokens a minute, one start per 80.4 ms.
    const TPM = 39_000;
    const { dir, loaded } = await writeJob(
      prompts(ROWS),
      `provider: anthropic\nprovider_options: { base_url: "${emu.baseURL}" }\nmodel: claude-sonnet-5-5`,
      `workers: 8, tpm: ${TPM}`,
    );
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: emu.apiKey },
      cwd: dir,
      retry: RETRY,
    });
    assert.deepEqual([summary.ok, summary.errors], [ROWS, 0]);
    const calls = emu.log.find("POST /v1/messages");
    assert.equal(calls.length, ROWS + RETRIED);
    assert.equal(calls.filter((e) => e.status === 429).length, RETRIED);
    assert.ok(calls.every((e) => tokensOf(e) === 52));
    checkPacing(
      calls.map((e) => ({ ms: e.receivedMs!, occupancyMs: (1.005 * tokensOf(e) * 60_000) / TPM })),
    );
  });

  it(
    "sync.tpm counts the max_tokens anthropic sends when the job sets none",
    async () => {
      const { emu } = anthropic;
      const ROWS = 8;
      // Anthropic sends max_tokens 1024 when the job sets none, so each request is worth about
      // 1,026 tokens: at 620,000 a minute, one start per 100 ms. Counting only the prompt's 2
      // tokens would start them all at once, far over the budget checkPacing holds them to.
      const TPM = 620_000;
      const { dir, loaded } = await writeJob(
        prompts(ROWS),
        `provider: anthropic\nprovider_options: { base_url: "${emu.baseURL}" }\nmodel: claude-sonnet-5-5`,
        `workers: 4, tpm: ${TPM}`,
        "{}",
      );
      const summary = await runJob(loaded, {
        env: { LOOM_HOME: join(dir, "home"), ANTHROPIC_API_KEY: emu.apiKey },
        cwd: dir,
        retry: RETRY,
      });
      assert.equal(summary.ok, ROWS);
      const calls = emu.log.find("POST /v1/messages");
      checkPacing(
        calls.map((e) => ({
          ms: e.receivedMs!,
          occupancyMs: (1.005 * tokensOf(e) * 60_000) / TPM,
        })),
      );
    },
  );
});

describe("a 429 storm that ends within the retry budget loses no row", () => {
  // Many workers and a storm far longer (in requests) than any row has attempts: each 429 is the
  // provider saying "not now", so a row keeps waiting for as long as its waiting budget lasts.
  const ROWS = 200;
  const STORM = 400;
  const hints: Array<{ name: string; hint: { retryAfter?: number; retryAfterMs?: number } }> = [
    { name: "without retry-after", hint: {} },
    { name: "with a tiny retry-after-ms", hint: { retryAfterMs: 1 } },
    { name: "with retry-after: 0", hint: { retryAfter: 0 } },
  ];
  for (const { name, hint } of hints) {
    it(`${ROWS} rows, 32 workers, the first ${STORM} requests answered 429 ${name}: every row answered`, async () => {
      const emu = openai.emu;
      emu.faults.add({
        name: "storm",
        match: { first: STORM },
        action: { kind: "status", status: 429, ...hint },
      });
      const { dir, loaded } = await writeJob(
        Array.from({ length: ROWS }, (_, i) => `row ${String(i + 1).padStart(3, "0")}`),
        `provider: openai\nprovider_options: { base_url: "${emu.baseURL}" }\nmodel: gpt-4o-mini`,
        "workers: 32",
      );
      // FAST_RETRY as the tests use it everywhere: 4 attempts, a second of waiting per row.
      const summary = await runJob(loaded, {
        env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey },
        cwd: dir,
        retry: FAST_RETRY,
      });
      const calls = emu.log.find("POST /v1/chat/completions");
      assert.equal(
        calls.filter((e) => e.fault === "storm").length,
        STORM,
        "the whole storm was met",
      );
      assert.deepEqual([summary.ok, summary.errors], [ROWS, 0]);
      assert.equal(calls.filter((e) => e.status === 200).length, ROWS, "each row answered once");
    });
  }
});
