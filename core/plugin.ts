/**
 * The plugin kit (`loom-batch/plugin`): everything a provider, format or storage plugin needs at
 * run time and nothing else, so a plugin imports from one entry instead of reaching into Loom's
 * folders. The error classes are real classes (a format throws `LoomDataError`, a provider
 * `LoomProviderError`); the core recognises them even from another copy of Loom.
 *
 * ```ts
 * import { definePlugin, LoomProviderError, type ProviderV1 } from "loom-batch/plugin";
 * export default definePlugin({
 *   apiVersion: 1, kind: "provider", name: "acme",
 *   create: (options, ctx): ProviderV1 => ({ specificationVersion: "loom.provider.v1", ... }),
 * });
 * ```
 * `loom-batch/testing` has the conformance suites, `loom-batch/emulator` a loopback server
 * speaking the providers' HTTP APIs.
 * @module
 */
export * from "./base/errors.ts";
export * from "./plugins/plugin.ts";
export { failpoint } from "./base/failpoints.ts";
export type * from "./spec/format.ts";
export type * from "./spec/provider.ts";
export * from "./spec/storage.ts";
