/**
 * The built-in plugins, by kind and name, as lazy imports: nothing loads until a job uses it, so
 * `loom --help` never pays for an SDK. `core/registry.test.ts` checks that this map and the
 * folders under `plugins/` agree.
 * @module
 */
import type { PluginDefinition, PluginKind } from "../core/plugins/plugin.ts";

/** A lazily imported plugin module. */
export type PluginModuleLoader = () => Promise<
  { default: PluginDefinition | readonly PluginDefinition[] }
>;

/** Built-in plugins: kind → name → loader. */
export const BUILTIN_PLUGINS: Readonly<
  Record<PluginKind, Readonly<Record<string, PluginModuleLoader>>>
> = {
  provider: {
    anthropic: () => import("./providers/anthropic/mod.ts"),
    echo: () => import("./providers/echo/mod.ts"),
    google: () => import("./providers/google/mod.ts"),
    openai: () => import("./providers/openai/mod.ts"),
    "openai-compatible": () => import("./providers/openai-compatible/mod.ts"),
    openrouter: () => import("./providers/openrouter/mod.ts"),
  },
  format: {
    csv: () => import("./formats/csv/mod.ts"),
    json: () => import("./formats/json/mod.ts"),
    jsonl: () => import("./formats/jsonl/mod.ts"),
  },
  storage: {
    memory: () => import("./storage/memory/mod.ts"),
    postgres: () => import("./storage/postgres/mod.ts"),
    sqlite: () => import("./storage/sqlite/mod.ts"),
  },
};
