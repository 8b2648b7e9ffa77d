import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  abandoned,
  adopted,
  beginSubmit,
  cancelUnsent,
  created,
  createLost,
  createRefused,
  createSent,
  cutOff,
  fetched,
  observed,
  phaseOf,
  unobserved,
} from "./shard.ts";
import type { JobRecord, ShardRecord } from "./store.ts";
import {
  cancelledWhileSubmitting,
  markedForCleanup,
  merged,
  reopenedForRetry,
  submissionDone,
} from "./job-state.ts";

const planned = (): ShardRecord => ({
  index: 0,
  rows: { start: 0, end: 3 },
  requests: 3,
  bytes: 100,
});

describe("shard state machine", () => {
  it("walks planned → submitting → in-doubt → submitted → ended → fetched", () => {
    const s = planned();
    assert.equal(phaseOf(s), "planned");
    beginSubmit(s);
    assert.equal(phaseOf(s), "submitting");
    // A provider that does not announce its create leaves a cut-off submission in doubt.
    assert.equal(phaseOf(s, false), "in-doubt");
    createSent(s);
    assert.equal(phaseOf(s), "in-doubt");
    created(s, { id: "batch_1" });
    assert.equal(phaseOf(s), "submitted");
    assert.equal(s.submittingSince, undefined);
    assert.equal(s.createSentAt, undefined);
    observed(s, { state: "in_progress" });
    assert.equal(phaseOf(s), "submitted");
    observed(s, { state: "completed", counts: { total: 3, succeeded: 3 } });
    assert.equal(phaseOf(s), "ended");
    unobserved(s, "results unreadable");
    assert.equal(phaseOf(s), "submitted", "an unknown state is checked again");
    observed(s, { state: "completed" });
    fetched(s, 3, 0);
    assert.equal(phaseOf(s), "fetched");
  });

  it("settles a shard in doubt by adoption, abandonment or a refusal", () => {
    const a = planned();
    beginSubmit(a);
    createSent(a);
    adopted(a, { id: "found" });
    assert.equal(phaseOf(a), "submitted");
    assert.equal(a.submittedAt !== undefined, true);

    const b = planned();
    beginSubmit(b);
    createSent(b);
    abandoned(b);
    assert.equal(phaseOf(b), "planned");

    const c = planned();
    beginSubmit(c);
    createSent(c);
    createRefused(c);
    assert.equal(phaseOf(c), "submitting");
    createLost(c);
    assert.equal(phaseOf(c), "in-doubt", "a lost answer keeps the shard in doubt");
  });

  it("cuts off and cancels shards that were never sent", () => {
    const s = planned();
    beginSubmit(s);
    cutOff(s);
    assert.equal(phaseOf(s), "planned");
    cancelUnsent(s, "cancelled before it was submitted");
    assert.equal(phaseOf(s), "cancelled-unsent");
  });

  it("refuses transitions from the wrong phase (a bug must not rewrite a record)", () => {
    const s = planned();
    assert.throws(() => created(s, { id: "x" }), /cannot be created while planned/);
    assert.throws(() => fetched(s, 1, 0), /cannot be fetched while planned/);
    beginSubmit(s);
    createSent(s);
    assert.throws(() => cutOff(s), /cannot be cut off while in-doubt/);
    assert.throws(() => cancelUnsent(s, "no"), /while in-doubt/);
    created(s, { id: "x" });
    assert.throws(() => beginSubmit(s), /cannot be submitted while submitted/);
    assert.throws(() => fetched(s, 1, 0), /while submitted/);
  });
});

describe("job state machine", () => {
  const job = (): JobRecord => ({
    version: 2,
    id: "20261204-bbbbbb",
    key: "k",
    createdAt: "2026-12-04T00:00:00.000Z",
    updatedAt: "2026-12-04T00:00:00.000Z",
    status: "submitting",
    spec: {} as JobRecord["spec"],
    input: { path: "/in.csv", size: 1, sha256: "x" },
    output: "/out.csv",
    rows: 3,
    shards: [planned()],
  });

  it("walks submitting → pending → merged → submitting (a retry) and marks a clean-up", () => {
    const r = job();
    submissionDone(r);
    assert.equal(r.status, "pending");
    merged(r, { ok: 2, errors: 1, retryable: 1 });
    assert.equal(r.status, "merged");
    assert.deepEqual([r.merged?.ok, r.merged?.errors, r.merged?.retryable], [2, 1, 1]);
    reopenedForRetry(r, [{ rows: { list: [2] }, requests: 1, bytes: 10 }]);
    assert.equal(r.status, "submitting");
    assert.equal(r.merged, undefined);
    assert.deepEqual(r.shards.map((s) => s.index), [0, 1]);
    submissionDone(r);
    merged(r, { ok: 3, errors: 0, retryable: 0 });
    markedForCleanup(r);
    assert.equal((r as JobRecord).merged?.cleanup, true);
  });

  it("refuses a merge before the submission is done, and a second merge", () => {
    const r = job();
    assert.throws(() => merged(r, { ok: 0, errors: 0, retryable: 0 }), /while submitting/);
    assert.throws(() => markedForCleanup(r), /while submitting/);
    cancelledWhileSubmitting(r);
    assert.equal(r.status, "pending");
    merged(r, { ok: 0, errors: 3, retryable: 3 });
    assert.throws(() => merged(r, { ok: 0, errors: 0, retryable: 0 }), /while merged/);
  });
});
