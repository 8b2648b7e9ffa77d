/**
 * A batch job's own life, beside its shards' (`shard.ts`): the record's `status` and `merged`
 * change only here, each transition allowed only from the statuses it names.
 *
 * ```text
 *   submitting ──submissionDone / cancelledWhileSubmitting──▶ pending ──merged──▶ merged
 *        ▲                                                      │                  │
 *        └──────────────────────── reopenedForRetry ────────────┴──────────────────┘
 * ```
 * A merged job is removed once every row has an answer ({@link markedForCleanup} first, so a
 * kill during the clean-up leaves a job the next fetch finishes).
 * @module
 */
import { LoomError } from "../base/errors.ts";
import type { JobRecord, ShardRecord } from "./store.ts";

/** Where a job is in its life. */
export type JobStatus = JobRecord["status"];

function expect(record: JobRecord, transition: string, allowed: readonly JobStatus[]): void {
  if (allowed.includes(record.status)) return;
  throw new LoomError(
    `internal error: job ${record.id} cannot be ${transition} while ${record.status} (only when ${
      allowed.join(" or ")
    })`,
  );
}

/** submitting → pending: every shard has its batch (or will never be sent). */
export function submissionDone(record: JobRecord): void {
  expect(record, "submitted", ["submitting", "pending"]);
  record.status = "pending";
}

/** submitting → pending: cancelled before its submission was finished; nothing more is sent. */
export function cancelledWhileSubmitting(record: JobRecord): void {
  if (record.status === "submitting") record.status = "pending";
}

/** pending → merged: the output is written; how its rows ended. */
export function merged(
  record: JobRecord,
  rows: {
    readonly ok: number;
    readonly errors: number;
    readonly retryable: number;
    readonly cost?: number;
    readonly inputTokens?: number;
    readonly outputTokens?: number;
  },
): void {
  expect(record, "merged", ["pending"]);
  record.status = "merged";
  record.merged = { at: new Date().toISOString(), ...rows };
}

/** merged → merged, to be removed: saved before anything is removed. */
export function markedForCleanup(record: JobRecord): void {
  expect(record, "marked for clean-up", ["merged"]);
  record.merged = { ...record.merged!, cleanup: true };
}

/** pending | merged → submitting: the rows without a good answer go out again as new shards. */
export function reopenedForRetry(
  record: JobRecord,
  shards: ReadonlyArray<Pick<ShardRecord, "rows" | "requests" | "bytes">>,
): void {
  expect(record, "retried", ["pending", "merged"]);
  for (const s of shards) {
    record.shards.push({
      index: record.shards.length,
      rows: s.rows,
      requests: s.requests,
      bytes: s.bytes,
    });
  }
  record.status = "submitting";
  delete record.merged;
}
