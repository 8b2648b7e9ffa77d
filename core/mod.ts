/**
 * Loom's public API: the plugin contracts and helpers for plugin authors, and the functions the
 * CLI is built on (load a job, run it). `loom-batch/testing` has the conformance suites.
 * The folders below are layers (base → spec → plugins → job → data → state → run → batch →
 * commands); `layers.test.ts` keeps every import pointing down.
 * @module
 */
export * from "./base/errors.ts";
export * from "./plugins/plugin.ts";
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
export type { RowOutcome, RunEvent, RunEventHandler, RunSummary } from "./base/events.ts";
export { Registry } from "./plugins/registry.ts";
export { type JobOverride, type LoadedJob, loadJob } from "./job/load.ts";
export { JobSchema, type JobSpec } from "./job/spec.ts";
export { DEFAULT_WORKERS, exitCodeFor, runJob, type RunOptions } from "./commands/run.ts";
export { cacheKey, ResponseCache } from "./state/cache.ts";
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
export { buildRequest } from "./data/request.ts";
export { defaultOutputPath } from "./data/output.ts";
export { VERSION } from "./base/version.ts";
