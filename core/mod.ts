/**
 * Loom's public API: the plugin contracts and helpers for plugin authors, and the functions the
 * CLI is built on (load a job, run it). `loom-batch/testing` has the conformance suites.
 * @module
 */
export * from "./errors.ts";
export * from "./plugin.ts";
export type * from "./spec/format.ts";
export type * from "./spec/provider.ts";
export {
  assertJobId,
  type AttachmentTableV2,
  type CacheStats,
  type CacheTableV2,
  type JobTableV2,
  type LeaseAttempt,
  type LeaseInfo,
  type LeaseTableV2,
  type ResultRow,
  type ResultTableV2,
  type StorageV2,
  type StoredJob,
} from "./spec/storage.ts";
export type { RowOutcome, RunEvent, RunEventHandler, RunSummary } from "./events.ts";
export { Registry } from "./registry.ts";
export { type JobOverride, type LoadedJob, loadJob } from "./job/load.ts";
export { JobSchema, type JobSpec } from "./job/schema.ts";
export { DEFAULT_WORKERS, exitCodeFor, runJob, type RunOptions } from "./run/job.ts";
export { cacheKey, ResponseCache } from "./cache.ts";
export {
  adoptBatch,
  type BatchRunOptions,
  cancelJob,
  fetchJobs,
  type FetchOutcome,
  forgetJob,
  type JobCommandOptions,
  jobStatus,
  listJobs,
  retryJob,
} from "./batch/jobs.ts";
export type { JobRecord, ShardRecord } from "./batch/store.ts";
export { maskUrl, openStore, storeChoice } from "./state/open.ts";
export { buildRequest } from "./request.ts";
export { defaultOutputPath } from "./output.ts";
export { VERSION } from "./version.ts";
