/**
 * Conformance suites for plugin authors (`loom-batch/testing`). Each registers `node:test`
 * tests, so they run under `deno test` and `node --test` alike.
 * @module
 */
export {
  PROVIDER_CHECK_NAMES,
  type ProviderCheckName,
  providerConformance,
  type ProviderConformanceOptions,
  runProviderCheck,
} from "./provider-conformance.ts";
export { storageConformance, type StorageConformanceOptions } from "./storage-conformance.ts";
export {
  assertDataError,
  bytesOf,
  formatConformance,
  type FormatConformanceOptions,
  readText,
  writeText,
} from "./format-conformance.ts";
