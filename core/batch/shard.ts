/**
 * A shard's life as an explicit state machine. A shard is one provider batch of a job; what it
 * has been through is written in its record ({@link ShardRecord}), and this module is the one
 * place that reads a phase from those fields ({@link phaseOf}) and the one place that changes them
 * (the transitions below, each allowed only from the phases it names).
 *
 * ```text
 *   planned ──beginSubmit──▶ submitting ──created──▶ submitted ──observed──▶ ended ──fetched──▶ fetched
 *      ▲  │                    │    │                   ▲
 *      │  cancelUnsent         │    createSent          │ adopted
 *      │  ▼                    │    ▼                   │
 *      │ cancelled-unsent      │  in-doubt ─────────────┘
 *      └──────── cutOff ───────┘    │
 *      └──────────── abandoned ─────┘   (the user pays again knowingly, or says none was created)
 * ```
 * A shard is `in-doubt` when its create may have gone out and no answer was recorded: it is never
 * created again on Loom's own (see `submit.ts`).
 * @module
 */
import { LoomError } from "../base/errors.ts";
import type { BatchHandle, BatchState, BatchStatus } from "../spec/provider.ts";
import type { ShardRecord } from "./store.ts";

/** Where a shard is in its life. */
export type ShardPhase =
  | "planned"
  | "submitting"
  | "in-doubt"
  | "submitted"
  | "ended"
  | "fetched"
  | "cancelled-unsent";

/** Provider states after which a batch changes no more. */
export const TERMINAL: ReadonlySet<string> = new Set<BatchState>([
  "completed",
  "failed",
  "expired",
  "cancelled",
]);

/**
 * The phase of a shard. `announcesCreate` is the provider's {@link BatchApi.announcesCreate}: a
 * provider that does not say when its create goes out leaves every submission cut off in doubt.
 */
export function phaseOf(shard: ShardRecord, announcesCreate = true): ShardPhase {
  if (shard.fetched) return "fetched";
  if (shard.handle) {
    return shard.state && TERMINAL.has(shard.state) ? "ended" : "submitted";
  }
  if (shard.submittingSince) {
    return shard.createSentAt || !announcesCreate ? "in-doubt" : "submitting";
  }
  return shard.state === "cancelled" ? "cancelled-unsent" : "planned";
}

/** A transition attempted from a phase that does not allow it: a bug, never the user's doing. */
function refuse(shard: ShardRecord, transition: string, allowed: readonly ShardPhase[]): never {
  throw new LoomError(
    `internal error: batch ${shard.index + 1} cannot be ${transition} while ${
      phaseOf(shard)
    } (only when ${allowed.join(" or ")})`,
  );
}

function expect(
  shard: ShardRecord,
  transition: string,
  allowed: readonly ShardPhase[],
  announcesCreate = true,
): void {
  if (!allowed.includes(phaseOf(shard, announcesCreate))) refuse(shard, transition, allowed);
}

const now = () => new Date().toISOString();

/** planned → submitting: recorded before anything is sent, so a kill leaves a trace. */
export function beginSubmit(shard: ShardRecord): void {
  expect(shard, "submitted", ["planned"]);
  shard.submittingSince = now();
}

/** submitting → in-doubt: the create request goes out now; until its answer is recorded, nobody knows. */
export function createSent(shard: ShardRecord): void {
  expect(shard, "sent", ["submitting", "in-doubt"]);
  shard.createSentAt = now();
}

/** in-doubt → submitting: the create was answered with a refusal, so nothing was created. */
export function createRefused(shard: ShardRecord): void {
  if (!shard.createSentAt) return;
  expect(shard, "refused", ["in-doubt"]);
  delete shard.createSentAt;
}

/** submitting | in-doubt → in-doubt: the create's answer was lost (kept as such for the next run). */
export function createLost(shard: ShardRecord): void {
  expect(shard, "lost", ["submitting", "in-doubt"], false);
  shard.createSentAt ??= shard.submittingSince;
}

/** submitting | in-doubt → submitted: the provider answered the create with its batch. */
export function created(shard: ShardRecord, handle: BatchHandle): void {
  expect(shard, "created", ["submitting", "in-doubt"], false);
  shard.handle = handle;
  shard.submittedAt = now();
  settle(shard);
}

/** in-doubt (or a cut-off submission) → submitted: the batch a lost create made was found, or named by the user. */
export function adopted(shard: ShardRecord, handle: BatchHandle): void {
  expect(shard, "adopted", ["submitting", "in-doubt"], false);
  shard.handle = handle;
  shard.submittedAt = shard.submittingSince;
  settle(shard);
}

function settle(shard: ShardRecord): void {
  shard.state = "validating";
  delete shard.submittingSince;
  delete shard.createSentAt;
}

/**
 * in-doubt → planned: the user said no batch was created (`loom adopt <job>` without an id), or
 * pays for it again knowingly (`--resubmit`). The next submission sends it anew.
 */
export function abandoned(shard: ShardRecord): void {
  expect(shard, "abandoned", ["submitting", "in-doubt"], false);
  delete shard.submittingSince;
  delete shard.createSentAt;
}

/** submitting → planned: cut off before its create went out (killed while uploading): nothing can exist. */
export function cutOff(shard: ShardRecord): void {
  expect(shard, "cut off", ["submitting"]);
  delete shard.submittingSince;
}

/** planned | submitting → cancelled-unsent: it will never be sent (cancelled, or refused outright). */
export function cancelUnsent(shard: ShardRecord, message: string): void {
  expect(shard, "cancelled unsent", ["planned", "submitting", "cancelled-unsent"]);
  delete shard.submittingSince;
  shard.state = "cancelled";
  shard.message = message;
}

/** submitted → submitted | ended: the provider's status was read. */
export function observed(shard: ShardRecord, status: BatchStatus): void {
  expect(shard, "checked", ["submitted"]);
  shard.state = status.state;
  shard.providerState = status.providerState;
  shard.counts = status.counts;
  shard.message = status.message;
  shard.checkedAt = now();
}

/** submitted | ended → same: the status could not be read (the last known state is unknown). */
export function unobserved(shard: ShardRecord, message: string): void {
  expect(shard, "checked", ["submitted", "ended"]);
  shard.state = "unknown";
  shard.message = message;
  shard.checkedAt = now();
}

/** The usage of a shard's answers added up (`ShardRecord.fetched`); each only when reported. */
export type ShardUsage = Partial<
  Pick<NonNullable<ShardRecord["fetched"]>, "inputTokens" | "outputTokens" | "cost">
>;

/** ended → fetched: the shard's results are saved in the store. */
export function fetched(
  shard: ShardRecord,
  ok: number,
  errors: number,
  usage: ShardUsage = {},
): void {
  expect(shard, "fetched", ["ended"]);
  shard.fetched = { ok, errors, at: now(), ...usage };
}
