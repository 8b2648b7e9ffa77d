/**
 * A job's uploads (the input files some providers take a batch as), once their batch needs them
 * no more: deleted. While a delete fails the job's record remembers the upload (`shard.upload`),
 * so the job is kept and a later fetch, cancel or forget tries again; the user is told which files
 * are left and how to delete them by hand.
 * @module
 */
import { errorMessage } from "../base/errors.ts";
import type { RunEventHandler } from "../base/events.ts";
import { withRetries } from "../run/retry.ts";
import type { BatchApi, BatchUpload } from "../spec/provider.ts";
import { phaseOf } from "./shard.ts";
import type { JobRecord, JobStore, ShardRecord } from "./store.ts";

/** What deleting uploads needs. */
export interface UploadContext {
  readonly batch: BatchApi;
  readonly store: JobStore;
  readonly signal?: AbortSignal;
  readonly onEvent?: RunEventHandler;
  /** Scrubs secrets from a provider's message. */
  readonly redact?: (text: string) => string;
}

/** A delete that failed: the shard whose upload is left, and why. */
export interface UploadLeft {
  readonly shard: ShardRecord;
  readonly error: string;
}

/** Whether a shard needs its upload no more: its results are saved, or it was cancelled before its batch was created. */
function doneWith(shard: ShardRecord): boolean {
  const phase = phaseOf(shard);
  return phase === "fetched" || phase === "cancelled-unsent";
}

/** The shards whose upload is done with but not deleted yet. */
export function uploadsLeft(record: JobRecord): ShardRecord[] {
  return record.shards.filter((s) => s.upload && doneWith(s));
}

/** An upload as messages name it: its ids at the provider (`file-abc`, `files/xyz`). */
export function uploadName(upload: BatchUpload): string {
  return Object.values(upload).join(", ");
}

/**
 * The uploads of `shards`, one line each: the file, why it is left (`reasonOf`), and (when the
 * provider says) the command that deletes it by hand.
 */
export function describeUploads(
  shards: readonly ShardRecord[],
  batch?: BatchApi,
  reasonOf: (shard: ShardRecord) => string | undefined = () => undefined,
): string[] {
  return shards.filter((s) => s.upload).map((s) => {
    const reason = reasonOf(s);
    const command = batch?.deleteUploadCommand?.(s.upload!);
    return `the uploaded input file of batch ${s.index + 1} (${uploadName(s.upload!)}) is left${
      reason ? ` (${reason})` : ""
    }${command ? `: delete it with ${command}` : ""}`;
  });
}

/**
 * Deletes the uploads of shards that need them no more. Called after the results are on disk, so
 * a delete never loses an answer. A failed delete is a warning naming the file, the Loom command
 * that tries again and the way to delete it by hand; the upload stays in the record (which the
 * caller then keeps). Returns the deletes that failed.
 */
export async function releaseUploads(
  ctx: UploadContext,
  record: JobRecord,
): Promise<UploadLeft[]> {
  const deleteUpload = ctx.batch.deleteUpload?.bind(ctx.batch);
  if (!deleteUpload) return [];
  const failed: UploadLeft[] = [];
  for (const shard of uploadsLeft(record)) {
    try {
      await withRetries(() => deleteUpload(shard.upload!, { signal: ctx.signal }), {
        signal: ctx.signal,
      });
      delete shard.upload;
      await ctx.store.save(record);
    } catch (error) {
      if (ctx.signal?.aborted) throw error;
      const why = (ctx.redact ?? String)(errorMessage(error));
      failed.push({ shard, error: why });
      const command = ctx.batch.deleteUploadCommand?.(shard.upload!);
      ctx.onEvent?.({
        type: "warning",
        message:
          `job ${record.id}: the uploaded input file of batch ${shard.index + 1} (${
            uploadName(shard.upload!)
          }) could not be deleted (${why}); the job's record keeps it until it is: the next ` +
          `\`loom fetch\`, or \`loom forget ${record.id}\`, tries again` +
          (command ? `; to delete it yourself: ${command}` : ""),
      });
    }
  }
  return failed;
}
