/**
 * Transient faults and authentication failures, for every SDK-based provider, end to end: a job
 * file run through `runJob` in sync mode against the loopback emulator. Storms of 429s, 5xx and
 * 529s, answers slower than the call timeout, and dropped connections must all end with every row
 * either answered or errored (never lost), with the retries visible in the emulator's log; a
 * refused key must stop the run at once instead of failing every row.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomError, LoomProviderError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { fetchJobs } from "../../../core/batch/jobs.ts";
import { runJob } from "../../../core/commands/run.ts";
import type { RetryPolicy } from "../../../core/run/retry.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import {
  type Emulator,
  type FaultRule,
  type LoggedRequest,
  type ProviderName,
  startEmulator,
} from "../../../emulator/mod.ts";
import { FAST_RETRY, useEmulator } from "./test-emulator.ts";

// The compatible-server profile has no key and no fault story of its own: not one of these.
const emulators: Record<Exclude<ProviderName, "compatible">, { emu: Emulator }> = {
  openai: useEmulator({ provider: "openai" }),
  anthropic: useEmulator({ provider: "anthropic" }),
  gemini: useEmulator({ provider: "gemini" }),
  openrouter: useEmulator({ provider: "openrouter" }),
};

/** One Loom provider and the emulator that stands in for its API. */
interface ProviderCase {
  readonly provider: string;
  readonly emulator: keyof typeof emulators;
  readonly model: string;
  /** Where the key goes in the environment. */
  readonly keyEnv: string;
  /** The generate endpoint, as `RequestLog.find` takes it. */
  readonly endpoint: string;
  /** What the run's error says when the emulator refuses the key. */
  readonly wrongKey: RegExp;
}

const PROVIDERS: readonly ProviderCase[] = [
  {
    provider: "openai",
    emulator: "openai",
    model: "gpt-4o-mini",
    keyEnv: "OPENAI_API_KEY",
    endpoint: "POST /v1/chat/completions",
    wrongKey: /^openai: 401 .*Incorrect API key.*\(check the API key\)$/,
  },
  {
    provider: "anthropic",
    emulator: "anthropic",
    model: "claude-sonnet-5-5",
    keyEnv: "ANTHROPIC_API_KEY",
    endpoint: "POST /v1/messages",
    wrongKey: /^anthropic: 401 .*authentication_error.*\(check the API key\)$/,
  },
  {
    // Gemini answers a wrong key with 400 INVALID_ARGUMENT / API_KEY_INVALID, as the real API does.
    provider: "google",
    emulator: "gemini",
    model: "gemini-2.5-flash",
    keyEnv: "GEMINI_API_KEY",
    endpoint: ":generateContent",
    wrongKey: /^google: 400 INVALID_ARGUMENT: API key not valid.*\(check the API key\)$/,
  },
  {
    provider: "openrouter",
    emulator: "openrouter",
    model: "openai/gpt-4o-mini",
    keyEnv: "OPENROUTER_API_KEY",
    endpoint: "POST /api/v1/chat/completions",
    wrongKey: /^openrouter: 401 .*\(check the API key\)$/,
  },
  {
    // Any Chat Completions endpoint: here the openai emulator, reached through base_url.
    provider: "openai-compatible",
    emulator: "openai",
    model: "gpt-4o-mini",
    keyEnv: "OPENAI_API_KEY",
    endpoint: "POST /v1/chat/completions",
    wrongKey: /^openai-compatible: 401 .*\(check the API key\)$/,
  },
];

/**
 * Fast like FAST_RETRY, but with more attempts than any storm below has faults: a row that is not
 * doomed can then never run out of attempts, whatever order the faults land in, so the outcome of
 * every row (and the number of requests) is exact. A short waiting budget ends the doomed row of a
 * rate-limit storm (rate limits spend waiting, not attempts) after a few dozen calls.
 */
const RETRY: RetryPolicy = { ...FAST_RETRY, maxAttempts: 10, maxTotalWaitMs: 200 };

/** Runs a job that must be stopped, and returns what stopped it. */
async function stoppedRun(
  loaded: Parameters<typeof runJob>[0],
  options: Parameters<typeof runJob>[1],
): Promise<unknown> {
  return await runJob(loaded, options).then(
    () => assert.fail("the run should have been stopped"),
    (e: unknown) => e,
  );
}

/** Rows of the fault runs; the one with "doomed" in it fails on every attempt. */
const ROWS = [
  "row 1 alpha",
  "row 2 bravo",
  "row 3 doomed",
  "row 4 delta",
  "row 5 echo",
  "row 6 foxtrot",
];

/** Writes a dataset and a sync job for `c` pointed at `baseURL`. */
async function writeJob(
  c: ProviderCase,
  baseURL: string,
  rows: readonly string[],
  options: { workers: number; timeoutMs?: number },
) {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  const timeout = options.timeoutMs === undefined ? "" : `, timeout_ms: ${options.timeoutMs}`;
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: ${c.provider}\n` +
      `provider_options: { base_url: "${baseURL}"${timeout} }\nmodel: ${c.model}\nmode: sync\n` +
      `params: { max_tokens: 50 }\noutput: { path: out.csv }\nsync: { workers: ${options.workers}, cache: false }\n`,
  );
  return { dir, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

/** The output rows, checking that each input row is there once, in order, answered or errored. */
function outputRows(dir: string, model: string, rows: readonly string[]) {
  const out = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
    string,
    string
  >[];
  assert.equal(out.length, rows.length, "one output row per input row");
  out.forEach((row, i) => {
    assert.equal(row.text, rows[i], "rows keep their order");
    const answered = row.llm_response !== "";
    const errored = row.llm_error !== "";
    assert.ok(
      answered !== errored,
      `row ${i + 1} has exactly one of llm_response and llm_error: ${JSON.stringify(row)}`,
    );
    if (answered) assert.equal(row.llm_response, `[${model}] ${rows[i]}`);
  });
  return out;
}

/** Whether a logged request carries the prompt text `text`. */
const carries = (entry: LoggedRequest, text: string) =>
  JSON.stringify(entry.body ?? null).includes(text);

/** A transient fault storm; `status` is what the emulator logs for a faulted request (0: no answer). */
interface Storm {
  readonly name: string;
  /** The rules, storm first: the first ones fault the first requests whatever their row. */
  readonly rules: FaultRule[];
  /** Expected status of the requests faulted by each rule, by rule name. */
  readonly statuses: Readonly<Record<string, number>>;
  /** The storm rules' statuses in arrival order (they count requests from the first). */
  readonly opening: readonly number[];
  /** What the doomed row's error says (its last attempt always meets the "doomed" rule). */
  readonly doomedError: RegExp;
  /**
   * The runtime's HTTP client may send an attempt twice: Deno's fetch transparently resends a
   * request once when a reused keep-alive connection closes without an answer. Node's does not.
   */
  readonly mayResend?: boolean;
  /** Rate limits (429, 529) spend no attempt: the doomed row ends when its waiting budget does. */
  readonly rateLimited?: boolean;
}

const status = (name: string, code: number, match: FaultRule["match"]): FaultRule => ({
  name,
  match,
  action: { kind: "status", status: code },
});
const doomed = (action: FaultRule["action"]): FaultRule => ({
  name: "doomed",
  match: { promptContains: "doomed" },
  action,
});

const STORMS: readonly Storm[] = [
  {
    name: "a storm of 429s",
    rules: [status("storm-429", 429, { first: 8 }), doomed({ kind: "status", status: 429 })],
    statuses: { "storm-429": 429, doomed: 429 },
    opening: Array(8).fill(429),
    doomedError: /429/,
    rateLimited: true,
  },
  {
    // Each rule counts every request it matches, so these fault requests 1-3, 4-6 and 7-9.
    name: "a storm of 500, 502 and 503",
    rules: [
      status("storm-500", 500, { first: 3 }),
      status("storm-502", 502, { first: 6 }),
      status("storm-503", 503, { first: 9 }),
      doomed({ kind: "status", status: 500 }),
    ],
    statuses: { "storm-500": 500, "storm-502": 502, "storm-503": 503, doomed: 500 },
    opening: [500, 500, 500, 502, 502, 502, 503, 503, 503],
    doomedError: /500/,
  },
  {
    name: "a storm of 529 overloaded",
    rules: [status("storm-529", 529, { first: 8 }), doomed({ kind: "status", status: 529 })],
    statuses: { "storm-529": 529, doomed: 529 },
    opening: Array(8).fill(529),
    doomedError: /529/,
    rateLimited: true,
  },
  {
    name: "dropped connections",
    rules: [
      { name: "storm-drop", match: { first: 8 }, action: { kind: "drop" } },
      doomed({ kind: "drop" }),
    ],
    statuses: { "storm-drop": 0, doomed: 0 },
    opening: Array(8).fill(0),
    doomedError: /\S/,
    mayResend: true,
  },
];

describe("transient faults end with every row answered or errored, retried visibly", () => {
  for (const c of PROVIDERS) {
    for (const storm of STORMS) {
      it(`${c.provider}: ${storm.name}`, async () => {
        const { emu } = emulators[c.emulator];
        for (const rule of storm.rules) emu.faults.add(rule);
        const { dir, loaded } = await writeJob(c, emu.baseURL, ROWS, { workers: 4 });
        const summary = await runJob(loaded, {
          env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
          cwd: dir,
          retry: RETRY,
        });

        assert.deepEqual([summary.rows, summary.ok, summary.errors], [
          ROWS.length,
          ROWS.length - 1,
          1,
        ]);
        const out = outputRows(dir, c.model, ROWS);
        const failed = out.filter((r) => r.llm_error !== "");
        assert.deepEqual(failed.map((r) => r.text), ["row 3 doomed"]);
        assert.ok(failed[0].llm_error.startsWith(`${c.provider}: `), failed[0].llm_error);
        assert.match(failed[0].llm_error, storm.doomedError);
        if (c.provider === "anthropic" && storm.statuses.doomed === 529) {
          assert.match(failed[0].llm_error, /overloaded_error/);
        }

        const calls = emu.log.find(c.endpoint);
        assert.equal(calls.length, emu.log.entries.length, "only generate calls were made");
        // Every request was either faulted, as its rule says, or answered 200; the storm hit
        // exactly the first requests, whichever rows they were for.
        for (const call of calls) {
          assert.equal(
            call.status,
            call.fault === undefined ? 200 : storm.statuses[call.fault],
            JSON.stringify(call),
          );
        }
        assert.deepEqual(calls.slice(0, storm.opening.length).map((e) => e.status), storm.opening);
        // Each answered row was answered exactly once, the doomed row used every attempt, and
        // each of the other requests was a retry after a fault.
        assert.equal(calls.filter((e) => e.status === 200).length, ROWS.length - 1);
        const doomedCalls = calls.filter((e) => carries(e, "doomed")).length;
        if (storm.rateLimited) {
          // Backoff waits of at most maxDelayMs each, until the waiting budget runs out.
          const least = Math.floor(RETRY.maxTotalWaitMs / RETRY.maxDelayMs);
          assert.ok(doomedCalls > least, `${doomedCalls} doomed calls`);
        } else if (storm.mayResend) {
          assert.ok(
            doomedCalls >= RETRY.maxAttempts && doomedCalls <= 2 * RETRY.maxAttempts,
            `${doomedCalls} doomed calls`,
          );
        } else assert.equal(doomedCalls, RETRY.maxAttempts);
        const faulted = calls.filter((e) => e.fault !== undefined).length;
        assert.equal(calls.length, ROWS.length - 1 + faulted);
        assert.equal(
          calls.filter((e) => e.fault?.startsWith("storm-")).length,
          storm.opening.length,
          "the whole storm was met",
        );
        assert.ok(calls.length > ROWS.length, "retries are visible");
      });
    }

    it(`${c.provider}: answers slower than timeout_ms time out and are retried`, async () => {
      const { emu } = emulators[c.emulator];
      // Held far longer than the timeout: only a client that gives up and retries finishes.
      const HELD = 4;
      emu.faults.add({
        name: "slow",
        match: { first: HELD },
        action: { kind: "slow", delayMs: 10_000 },
      });
      const rows = ROWS.map((r) => r.replace("doomed", "charlie"));
      const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 4, timeoutMs: 400 });
      const summary = await runJob(loaded, {
        env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
        cwd: dir,
        retry: RETRY,
      });

      assert.deepEqual([summary.ok, summary.errors], [rows.length, 0]);
      const out = outputRows(dir, c.model, rows);
      assert.ok(out.every((r) => r.llm_error === ""));
      const calls = emu.log.find(c.endpoint);
      const held = calls.filter((e) => e.fault === "slow");
      assert.equal(held.length, HELD);
      // The run ended while the held requests were still unanswered: their rows were answered by
      // retries. (A loaded machine may time out an ordinary call too, hence the one-sided bounds.)
      assert.ok(held.every((e) => e.status === 0), "no held request was answered");
      assert.ok(calls.filter((e) => e.status === 200).length >= rows.length);
      assert.ok(calls.length >= rows.length + HELD, `${calls.length} requests`);
      for (const entry of held) {
        const text = rows.find((r) => carries(entry, r))!;
        assert.ok(
          calls.some((e) => e.seq > entry.seq && e.status === 200 && carries(e, text)),
          `${text} was retried`,
        );
      }
    });
  }
});

describe("a rate limit that never lifts stops the run instead of holding row after row", () => {
  for (const c of PROVIDERS.slice(0, 3)) {
    it(`${c.provider}: rows that wait out their whole budget, one after the other`, async () => {
      const { emu } = emulators[c.emulator];
      const rows = Array.from({ length: 100 }, (_, i) => `prompt number ${i + 1}`);
      emu.faults.add({ name: "limited", action: { kind: "status", status: 429 } });
      const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 4 });
      const error = await stoppedRun(loaded, {
        env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
        cwd: dir,
        retry: RETRY,
      });
      assert.ok(error instanceof LoomProviderError, String(error));
      assert.equal(error.fatal, true);
      assert.match(
        error.message,
        new RegExp(
          `^stopped: 3 rows in a row were still refused with 429 after waiting up to ${RETRY.maxTotalWaitMs} ms each, the last with "${c.provider}: 429 `,
        ),
      );
      assert.match(
        error.message,
        /the cache is off, so a rerun starts over\. Check the account's rate limits and quota/,
      );
      assert.throws(() => readFileSync(join(dir, "out.csv")), /ENOENT/, "no output is written");
      // Each row alone would wait out its whole budget (dozens of calls each, thousands in all).
      const requests = emu.log.count(c.endpoint);
      assert.ok(requests < 20 * rows.length / 4, `${requests} requests for ${rows.length} rows`);
    });
  }
});

describe("a refused key stops the run at once", () => {
  const rows = Array.from(
    { length: 20 },
    (_, i) => `prompt number ${String(i + 1).padStart(2, "0")}`,
  );
  const WRONG = "wrong-key-0123456789abcdef";

  /**
   * A run on an emulator of its own, stopped afterwards: a rejected run may leave a call in
   * flight, which must not land in another test's log.
   */
  async function refusedRun(
    c: ProviderCase,
    setup: (emu: Emulator) => { apiKey?: string; env?: Record<string, string> },
  ) {
    const emu = await startEmulator({ provider: c.emulator });
    try {
      const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 2 });
      const { apiKey, env } = setup(emu);
      const error = await stoppedRun(loaded, {
        env: { LOOM_HOME: join(dir, "home"), ...env },
        apiKey,
        cwd: dir,
        retry: FAST_RETRY,
      });
      return { error, requests: emu.log.count(c.endpoint), dir };
    } finally {
      await emu.stop();
    }
  }

  /** The error is fatal, clear and free of the key; no output was written; few calls were made. */
  function checkStopped(result: Awaited<ReturnType<typeof refusedRun>>, message: RegExp) {
    const { error, requests, dir } = result;
    assert.ok(error instanceof LoomProviderError, String(error));
    assert.equal(error.fatal, true);
    assert.equal(error.retryable, false);
    assert.match(error.message, message);
    assert.ok(!error.message.includes(WRONG), error.message);
    assert.throws(() => readFileSync(join(dir, "out.csv")), /ENOENT/, "no output is written");
    // Two workers: both first calls go out together, and one more row may start if the second
    // answer arrives first (see the todo test below for why this is not bounded by `workers`).
    assert.ok(requests >= 1 && requests <= 3, `${requests} requests for ${rows.length} rows`);
  }

  for (const c of PROVIDERS) {
    it(`${c.provider}: a wrong key`, async () => {
      const result = await refusedRun(c, () => ({ apiKey: WRONG }));
      checkStopped(result, c.wrongKey);
    });

    it(`${c.provider}: 401 from the API`, async () => {
      const result = await refusedRun(c, (emu) => {
        emu.faults.add({
          action: { kind: "status", status: 401, message: "Invalid authentication credentials" },
        });
        return { env: { [c.keyEnv]: emu.apiKey } };
      });
      checkStopped(
        result,
        new RegExp(
          `^${c.provider}: .*401.*Invalid authentication credentials.*\\(check the API key\\)$`,
        ),
      );
    });
  }

  it("anthropic: an empty credit balance (a plain 400) stops the run at once", async () => {
    const c = PROVIDERS.find((p) => p.provider === "anthropic")!;
    const result = await refusedRun(c, (emu) => {
      const message =
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.";
      emu.faults.add({
        action: { kind: "status", status: 400, code: "invalid_request_error", message },
      });
      return { env: { [c.keyEnv]: emu.apiKey } };
    });
    assert.ok(
      result.error instanceof LoomProviderError && result.error.fatal,
      String(result.error),
    );
    assert.match(
      result.error.message,
      /credit balance is too low.*\(no retry can fix this: check the account\)$/,
    );
    assert.ok(result.requests <= 3, `${result.requests} requests`);
  });

  it("openrouter: out of credits (402) stops the run at once", async () => {
    const c = PROVIDERS.find((p) => p.provider === "openrouter")!;
    const result = await refusedRun(c, (emu) => {
      emu.faults.add({
        action: {
          kind: "status",
          status: 402,
          message: "Insufficient credits. Add more using https://openrouter.ai/credits",
        },
      });
      return { env: { [c.keyEnv]: emu.apiKey } };
    });
    assert.ok(
      result.error instanceof LoomProviderError && result.error.fatal,
      String(result.error),
    );
    assert.match(
      result.error.message,
      /^openrouter: 402 Insufficient credits.*\(no retry can fix this: check the account\)$/,
    );
    assert.ok(result.requests <= 3, `${result.requests} requests`);
  });

  it(
    "openai: does not send every remaining row while an earlier row is still in flight",
    async () => {
      const c = PROVIDERS[0];
      const result = await refusedRun(c, (emu) => {
        // Row 1 takes a while (as a long answer does); every other call is refused.
        emu.faults.add({
          match: { promptContains: "prompt number 01" },
          action: { kind: "slow", delayMs: 800 },
        });
        emu.faults.add({
          action: { kind: "status", status: 401, message: "Invalid authentication credentials" },
        });
        return { env: { [c.keyEnv]: emu.apiKey } };
      });
      assert.ok(
        result.error instanceof LoomProviderError && result.error.fatal,
        String(result.error),
      );
      assert.ok(
        result.requests <= 3,
        `the emulator saw ${result.requests} requests for ${rows.length} rows after the first 401`,
      );
    },
  );
});

describe("a refused row is that row's error; many refused alike stop the run", () => {
  /** A 400 whose code Loom has never heard of, with a message to find in the row's error. */
  const refusal = (match: FaultRule["match"], message: string): FaultRule => ({
    name: "refused",
    match,
    action: { kind: "status", status: 400, code: "unheard_of_check", message },
  });

  for (const c of PROVIDERS) {
    it(`${c.provider}: a poisoned row in the middle fails alone, named, with the provider's message`, async () => {
      const { emu } = emulators[c.emulator];
      const rows = ROWS.map((r) => r.replace("doomed", "poisoned"));
      emu.faults.add(
        refusal({ promptContains: "poisoned" }, "This prompt trips a check nobody told Loom about"),
      );
      const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 4 });
      const events: Array<{ index?: number; outcome?: string; error?: string }> = [];
      const summary = await runJob(loaded, {
        env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
        cwd: dir,
        retry: RETRY,
        onEvent: (e) => e.type === "row" && events.push(e),
      });

      assert.deepEqual([summary.ok, summary.errors], [rows.length - 1, 1]);
      const out = outputRows(dir, c.model, rows);
      const failed = out.filter((r) => r.llm_error !== "");
      assert.deepEqual(failed.map((r) => r.id), ["3"]);
      assert.ok(failed[0].llm_error.startsWith(`${c.provider}: `), failed[0].llm_error);
      assert.match(failed[0].llm_error, /400/);
      assert.match(failed[0].llm_error, /This prompt trips a check nobody told Loom about/);
      // The row event names the row.
      assert.deepEqual(events.filter((e) => e.outcome === "error").map((e) => e.index), [2]);
      // A refusal is not retried.
      assert.equal(emu.log.find(c.endpoint).filter((e) => carries(e, "poisoned")).length, 1);
    });
  }

  it("openrouter: a row whose input moderation flagged (a 403 with the flag) fails alone", async () => {
    const c = PROVIDERS.find((p) => p.provider === "openrouter")!;
    const { emu } = emulators[c.emulator];
    const rows = ROWS.map((r) => r.replace("doomed", "flagged"));
    emu.faults.add({
      match: { promptContains: "flagged" },
      action: {
        kind: "status",
        status: 403,
        message:
          'openai/gpt-4o-mini requires moderation on OpenAI. Your input was flagged for "harassment".',
        extra: {
          metadata: {
            reasons: ["harassment"],
            flagged_input: "row 3 flagged",
            provider_name: "OpenAI",
            model_slug: "openai/gpt-4o-mini",
          },
        },
      },
    });
    const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 4 });
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
      cwd: dir,
      retry: RETRY,
    });
    assert.deepEqual([summary.ok, summary.errors], [rows.length - 1, 1]);
    const failed = outputRows(dir, c.model, rows).filter((r) => r.llm_error !== "");
    assert.deepEqual(failed.map((r) => r.id), ["3"]);
    assert.match(failed[0].llm_error, /^openrouter: 403 .*Your input was flagged/);
    assert.doesNotMatch(failed[0].llm_error, /check the API key/);
  });

  it("openai: refusals between answers never stop the run, however many", async () => {
    const c = PROVIDERS[0];
    const { emu } = emulators[c.emulator];
    // Every other row is refused: 30 refusals, never two in a row.
    const rows = Array.from(
      { length: 60 },
      (_, i) => `row ${i + 1} ${i % 2 ? "poisoned" : "fine"}`,
    );
    emu.faults.add(refusal({ promptContains: "poisoned" }, "Refused for reasons of its own"));
    const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 1 });
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
      cwd: dir,
      retry: RETRY,
    });
    assert.deepEqual([summary.ok, summary.errors], [30, 30]);
    const out = outputRows(dir, c.model, rows);
    assert.ok(out.every((r, i) => (r.llm_error !== "") === (i % 2 === 1)));
  });

  for (const c of PROVIDERS) {
    it(`${c.provider}: a 400 for every row stops the run early, saying why, with few calls`, async () => {
      const { emu } = emulators[c.emulator];
      const rows = Array.from({ length: 100 }, (_, i) => `prompt number ${i + 1}`);
      emu.faults.add(
        refusal({}, "Unsupported value: 'temperature' does not support 0.3 with this model"),
      );
      const { dir, loaded } = await writeJob(c, emu.baseURL, rows, { workers: 4 });
      const error = await stoppedRun(loaded, {
        env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
        cwd: dir,
        retry: RETRY,
      });
      assert.ok(error instanceof LoomProviderError, String(error));
      assert.equal(error.fatal, true);
      assert.match(error.message, /^stopped: the provider refused 20 rows in a row with /);
      assert.match(
        error.message,
        /Unsupported value: 'temperature' does not support 0\.3 with this model/,
      );
      // The cache is off in these jobs, and the message says what that means.
      assert.match(error.message, /cache is off/);
      assert.throws(() => readFileSync(join(dir, "out.csv")), /ENOENT/, "no output is written");
      // Twenty refusals, and at most the calls the other workers had in flight.
      const requests = emu.log.count(c.endpoint);
      assert.ok(
        requests >= 20 && requests <= 20 + 4,
        `${requests} requests for ${rows.length} rows`,
      );
    });
  }
});

describe("a batch command that gives up after retries says the job is intact", () => {
  it("openai: a fetch whose results download stays 503 keeps the job, says so, and a later fetch merges it", async () => {
    const c = PROVIDERS[0];
    const { emu } = emulators[c.emulator];
    const rows = ROWS.map((r) => r.replace("doomed", "charlie"));
    const { dir } = await writeJob(c, emu.baseURL, rows, { workers: 2 });
    writeFileSync(
      join(dir, "job.yaml"),
      readFileSync(join(dir, "job.yaml"), "utf8").replace("mode: sync", "mode: batch"),
    );
    const loaded = await loadJob({ file: join(dir, "job.yaml"), cwd: dir });
    const opts = {
      env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
      cwd: dir,
      retry: RETRY,
    };
    const id = (await runJob(loaded, opts)).job!.id;

    emu.faults.add({
      name: "busy",
      match: { method: "GET", path: /^\/v1\/files\/[^/]+\/content/ },
      action: { kind: "status", status: 503 },
    });
    // A results download that fails merges nothing: the shard is read again by the next fetch.
    await assert.rejects(fetchJobs([id], { ...opts, wait: true, pollMs: 1 }), (e: unknown) => {
      assert.ok(e instanceof LoomError, String(e));
      assert.match(e.message, /503/);
      assert.match(
        e.message,
        new RegExp(
          `Nothing was merged and the job is intact: \`loom fetch --id ${id}\` tries again`,
        ),
      );
      return true;
    });
    assert.ok(
      emu.log.entries.filter((e) => e.fault === "busy").length >= RETRY.maxAttempts,
      "the download was retried",
    );
    assert.throws(() => readFileSync(join(dir, "out.csv")), /ENOENT/);

    emu.faults.clear();
    const [fetched] = await fetchJobs([id], { ...opts, wait: true, pollMs: 1 });
    assert.ok(!("error" in fetched), String((fetched as { error?: unknown }).error));
    assert.ok(outputRows(dir, c.model, rows).every((r) => r.llm_error === ""));
  });

  // A 429 refuses the create, so retrying it is safe (a 5xx or a lost answer leaves it in doubt:
  // see core/batch/lost-create.test.ts); rate limits spend waiting time, not attempts.
  it("openai: a submission whose create stays rate-limited says the job is recorded, and the same run later submits it once", async () => {
    const c = PROVIDERS[0];
    const { emu } = emulators[c.emulator];
    const rows = ROWS.map((r) => r.replace("doomed", "charlie"));
    const { dir } = await writeJob(c, emu.baseURL, rows, { workers: 2 });
    writeFileSync(
      join(dir, "job.yaml"),
      readFileSync(join(dir, "job.yaml"), "utf8").replace("mode: sync", "mode: batch"),
    );
    const loaded = await loadJob({ file: join(dir, "job.yaml"), cwd: dir });
    const opts = {
      env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey },
      cwd: dir,
      retry: RETRY,
    };

    emu.faults.add({
      name: "busy",
      match: { method: "POST", path: "/v1/batches" },
      action: { kind: "status", status: 429, retryAfterMs: 1 },
    });
    await assert.rejects(runJob(loaded, opts), (e: unknown) => {
      assert.ok(e instanceof LoomProviderError, String(e));
      assert.match(
        e.message,
        /429.*\(gave up after retrying; the job is recorded: run the same job again later to finish submitting it\)$/,
      );
      return true;
    });
    assert.ok(
      emu.log.entries.filter((e) => e.fault === "busy").length >= 2,
      "the create was retried",
    );

    emu.faults.clear();
    const id = (await runJob(loaded, opts)).job!.id;
    assert.equal(
      emu.log.find("POST /v1/batches").filter((e) => e.status === 200).length,
      1,
      "one batch created",
    );
    const [fetched] = await fetchJobs([id], { ...opts, wait: true, pollMs: 1 });
    assert.ok(!("error" in fetched), String((fetched as { error?: unknown }).error));
    assert.ok(outputRows(dir, c.model, rows).every((r) => r.llm_error === ""));
  });
});
