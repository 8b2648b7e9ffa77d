/**
 * How plugins are declared. A plugin module default-exports one {@link PluginDefinition} or an
 * array of them; built-in plugins use exactly the same shape as third-party ones.
 *
 * ```ts
 * import { definePlugin } from "loom-batch";
 * export default definePlugin({
 *   apiVersion: 1, kind: "provider", name: "acme",
 *   create: (options, ctx) => ({ specificationVersion: "loom.provider.v1", ... }),
 * });
 * ```
 * @module
 */
import type { FormatV1 } from "../spec/format.ts";
import type { ProviderV1 } from "../spec/provider.ts";
import type { StorageV2 } from "../spec/storage.ts";

/** The plugin API version this Loom implements. */
export const PLUGIN_API_VERSION = 1 as const;

/** The three kinds of plugin. */
export type PluginKind = "provider" | "format" | "storage";

/** What a plugin's `create` receives besides its options. */
export interface PluginContext {
  /** Environment variables (a copy; plugins read keys from here, never from the process directly). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Loom's home directory (`LOOM_HOME`, default `~/.loom`). */
  readonly home: string;
}

/** Options every provider receives (plus whatever the job's `provider_options` hold). */
export interface ProviderOptions {
  /** API key from `--api-key`; providers fall back to their environment variable. */
  readonly apiKey?: string;
  readonly [key: string]: unknown;
}

/** The instance type of each kind. */
export interface PluginInstances {
  provider: ProviderV1;
  format: FormatV1;
  storage: StorageV2;
}

/** A plugin definition of one kind. */
export interface PluginDefinition<K extends PluginKind = PluginKind> {
  /** Must be {@link PLUGIN_API_VERSION}; a mismatch is refused with a clear error. */
  readonly apiVersion: typeof PLUGIN_API_VERSION;
  readonly kind: K;
  /** Registry name: lower case letters, digits and `-`. */
  readonly name: string;
  /** One line for `--help` listings. */
  readonly description?: string;
  /**
   * Providers only: how the core finds the API key before `create`, which then receives it as
   * `options.apiKey`. Order: `--api-key`, these environment variables, then `.env`.
   */
  readonly apiKey?: {
    /** Environment variables to try, in order (they may depend on the provider options). */
    envVars(options: Readonly<Record<string, unknown>>): readonly string[];
    /** False for providers that also work without a key (a local server). Default true. */
    required?(options: Readonly<Record<string, unknown>>): boolean;
  };
  /** Builds an instance. Heavy dependencies (SDKs) are imported here, not at module load. */
  create(
    options: Readonly<Record<string, unknown>>,
    context: PluginContext,
  ): PluginInstances[K] | Promise<PluginInstances[K]>;
}

/** Identity helper that type-checks a plugin definition. */
export function definePlugin<K extends PluginKind>(
  definition: PluginDefinition<K>,
): PluginDefinition<K> {
  return definition;
}
