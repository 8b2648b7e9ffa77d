/**
 * The plugin registry: one place for providers, formats and storage backends, built-in or
 * third-party. Built-ins are imported on first use; third-party modules are loaded from a job's
 * `plugins:` list and go through exactly the same checks.
 * @module
 */
import { extname } from "node:path";
import { BUILTIN_PLUGINS, type PluginModuleLoader } from "../../plugins/_builtins.ts";
import { errorMessage, LoomError, LoomPluginError, LoomUsageError } from "../base/errors.ts";
import { guardFormat } from "./guard-format.ts";
import { importPluginModule } from "./loader.ts";
import {
  PLUGIN_API_VERSION,
  type PluginContext,
  type PluginDefinition,
  type PluginInstances,
  type PluginKind,
} from "./plugin.ts";
import type { FormatV1 } from "../spec/format.ts";

const KINDS: readonly PluginKind[] = ["provider", "format", "storage"];
const SPEC_VERSION: Record<PluginKind, string> = {
  provider: "loom.provider.v1",
  format: "loom.format.v1",
  storage: "loom.storage.v2",
};

/** What an instance lacks of its contract's required members, said for a message; or undefined. */
function lacks(kind: PluginKind, instance: Record<string, unknown>): string | undefined {
  const fn = (member: string) =>
    typeof instance[member] === "function" ? undefined : `no ${member}() function`;
  if (kind === "provider") return fn("generate");
  if (kind === "format") {
    const ext = instance.extensions;
    if (!Array.isArray(ext) || !ext.every((e) => typeof e === "string" && e.startsWith("."))) {
      return 'no extensions list (the file extensions it claims, such as [".psv"]; [] for none)';
    }
    return fn("open") ?? fn("write");
  }
  return undefined;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Checks that `value` is a valid plugin definition; `origin` names where it came from. */
function checkDefinition(value: unknown, origin: string): PluginDefinition {
  const d = value as Partial<PluginDefinition> | null;
  const fail = (what: string) => {
    throw new LoomPluginError(`plugin ${origin}: ${what}`);
  };
  if (!d || typeof d !== "object") {
    return fail("the default export must be a plugin definition object (or a list of them)");
  }
  if (d.apiVersion !== PLUGIN_API_VERSION) {
    fail(`apiVersion is ${JSON.stringify(d.apiVersion)}, this Loom supports ${PLUGIN_API_VERSION}`);
  }
  if (!KINDS.includes(d.kind as PluginKind)) fail(`kind must be one of ${KINDS.join(", ")}`);
  if (typeof d.name !== "string" || !NAME.test(d.name)) {
    fail(`name ${JSON.stringify(d.name)} must be lower-case letters, digits and "-"`);
  }
  if (typeof d.create !== "function") fail("create must be a function");
  return d as PluginDefinition;
}

/** Providers, formats and storage backends by name. */
export class Registry {
  readonly #builtins: Readonly<Record<PluginKind, Readonly<Record<string, PluginModuleLoader>>>>;
  readonly #loaded: Record<
    PluginKind,
    Map<string, { definition: PluginDefinition; origin: string }>
  > = {
    provider: new Map(),
    format: new Map(),
    storage: new Map(),
  };

  constructor(builtins = BUILTIN_PLUGINS) {
    this.#builtins = builtins;
  }

  /** Registers a third-party definition; a name may be registered once per kind. */
  register(definition: PluginDefinition, origin = "(registered in code)"): void {
    const d = checkDefinition(definition, origin);
    // A plugin must not silently replace a built-in: a job naming "openai" gets the real one.
    if (d.name in this.#builtins[d.kind]) {
      throw new LoomPluginError(
        `plugin ${origin}: "${d.name}" is the name of a built-in ${d.kind}; choose another name`,
      );
    }
    this.#add(d, origin);
  }

  #add(d: PluginDefinition, origin: string): void {
    const existing = this.#loaded[d.kind].get(d.name);
    if (existing && existing.definition !== d) {
      throw new LoomPluginError(
        `plugin ${origin}: a ${d.kind} named "${d.name}" is already registered by ${existing.origin}`,
      );
    }
    this.#loaded[d.kind].set(d.name, { definition: d, origin });
  }

  /** Loads a third-party plugin module (a path relative to `baseDir`, or a package name). */
  async load(ref: string, baseDir: string): Promise<PluginDefinition[]> {
    const exported = await importPluginModule(ref, baseDir);
    const definitions = Array.isArray(exported) ? exported : [exported];
    if (definitions.length === 0) throw new LoomPluginError(`plugin ${ref}: exports an empty list`);
    for (const d of definitions) this.register(d as PluginDefinition, ref);
    return definitions as PluginDefinition[];
  }

  /** Every known name of a kind, built-in and loaded, sorted. */
  names(kind: PluginKind): string[] {
    return [...new Set([...Object.keys(this.#builtins[kind]), ...this.#loaded[kind].keys()])]
      .sort();
  }

  /** The definition of a plugin, importing a built-in on first use. */
  async definition<K extends PluginKind>(kind: K, name: string): Promise<PluginDefinition<K>> {
    const loaded = this.#loaded[kind].get(name);
    if (loaded) return loaded.definition as PluginDefinition<K>;
    const loader = this.#builtins[kind][name];
    if (!loader) {
      throw new LoomUsageError(`unknown ${kind} "${name}" (known: ${this.names(kind).join(", ")})`);
    }
    const module = await loader();
    const list = Array.isArray(module.default) ? module.default : [module.default];
    const found = list.find((d: PluginDefinition) => d.kind === kind && d.name === name);
    if (!found) {
      throw new LoomPluginError(`built-in ${kind} ${name}: its module does not define it`);
    }
    this.#add(checkDefinition(found, `built-in ${kind} ${name}`), `built-in ${kind} ${name}`);
    return found as PluginDefinition<K>;
  }

  /** Creates an instance and checks that it implements the kind's contract version. */
  async create<K extends PluginKind>(
    kind: K,
    name: string,
    options: Readonly<Record<string, unknown>>,
    context: PluginContext,
  ): Promise<PluginInstances[K]> {
    const definition = await this.definition(kind, name);
    const origin = this.#loaded[kind].get(name)?.origin ?? `built-in ${kind} ${name}`;
    let instance: PluginInstances[K];
    try {
      instance = await definition.create(options, context);
    } catch (error) {
      // Loom's own errors (a missing key, a bad option) say what to do already, a built-in's and
      // a system fault (a full disk: `code`) are told as Loom tells them; anything else is a
      // third-party plugin's bug, said as one line that names it.
      const builtin = name in this.#builtins[kind];
      if (LoomError.isInstance(error) || builtin || (error as { code?: unknown })?.code) {
        throw error;
      }
      throw new LoomPluginError(
        `${kind} ${name} (${origin}): create() failed: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    const version = (instance as { specificationVersion?: string } | undefined)
      ?.specificationVersion;
    if (version !== SPEC_VERSION[kind]) {
      throw new LoomPluginError(
        `${kind} ${name}: create() returned an object with specificationVersion ${
          JSON.stringify(version)
        }, expected "${SPEC_VERSION[kind]}"`,
      );
    }
    const lacking = lacks(kind, instance as unknown as Record<string, unknown>);
    if (lacking) {
      throw new LoomPluginError(`${kind} ${name} (${origin}): create() returned ${lacking}`);
    }
    if (kind === "format" && !(name in this.#builtins.format)) {
      return guardFormat(instance as FormatV1, `${name} (${origin})`) as PluginInstances[K];
    }
    return instance;
  }

  /**
   * The format that claims a file's extension (`.gz` is looked through). Two formats claiming it
   * is a question for the user (`dataset.format`), not one to settle by name order; a plugin format
   * that fails to start matters only when no other claims the extension.
   */
  async formatForPath(
    path: string,
    context: PluginContext,
  ): Promise<{ name: string; format: FormatV1 }> {
    const ext = extname(path.toLowerCase().replace(/\.gz$/, ""));
    const claims: { name: string; format: FormatV1 }[] = [];
    let failed: unknown;
    for (const name of this.names("format")) {
      let format: FormatV1;
      try {
        format = await this.create("format", name, {}, context);
      } catch (error) {
        if (name in this.#builtins.format) throw error;
        failed ??= error;
        continue;
      }
      if (format.extensions.includes(ext)) claims.push({ name, format });
    }
    if (claims.length === 1) return claims[0];
    if (claims.length > 1) {
      throw new LoomUsageError(
        `${path}: the extension "${ext}" is claimed by the formats ${
          claims.map((c) => c.name).join(" and ")
        }; set dataset.format in the job to the one to read it with`,
      );
    }
    if (failed) throw failed;
    throw new LoomUsageError(
      `${path}: cannot tell the format from the extension "${
        ext || "(none)"
      }"; set dataset.format (known: ${this.names("format").join(", ")})`,
    );
  }
}
