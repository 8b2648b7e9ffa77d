/**
 * Which state store a Loom process uses, and opening it. `--state URL` (which the CLI puts into
 * `LOOM_STATE`) or `LOOM_STATE` choose it; unset means the embedded SQLite file
 * `LOOM_HOME/state.db`. The part before the first `:` names the storage plugin
 * (`postgres://…`, `sqlite:/path/state.db`, `memory:`, `acme:whatever`); the whole value is given
 * to it as `options.url`. A value is never printed as given: {@link maskUrl} hides its password.
 * @module
 */
import process from "node:process";
import { LoomUsageError } from "../base/errors.ts";
import type { PluginContext } from "../plugins/plugin.ts";
import type { Registry } from "../plugins/registry.ts";
import type { StorageV2 } from "../spec/storage.ts";
import { migrateFileState } from "./migrate-files.ts";

/** The storage plugin used when `LOOM_STATE` is unset. */
export const DEFAULT_STORE = "sqlite";

/** Scheme aliases: the names people write for a backend. */
const ALIASES: Readonly<Record<string, string>> = { postgresql: "postgres" };

/** What `LOOM_STATE` selects: a storage plugin and the URL it is given. */
export interface StoreChoice {
  readonly plugin: string;
  /** The value of `LOOM_STATE`, or undefined for the default. */
  readonly url?: string;
}

/** Parses `LOOM_STATE` (already holding `--state` when given). */
export function storeChoice(env: Readonly<Record<string, string | undefined>>): StoreChoice {
  const url = env.LOOM_STATE?.trim();
  if (!url) return { plugin: DEFAULT_STORE };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (!scheme || /^[a-z]$/.test(scheme)) {
    // A path alone (or a Windows drive letter): the SQLite file there.
    return { plugin: "sqlite", url: `sqlite:${url}` };
  }
  return { plugin: ALIASES[scheme] ?? scheme, url };
}

/** `url` with any password replaced by `***`, for messages. */
export function maskUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, "$1***@")
    .replace(/([?&](?:password|pass|pwd)=)[^&]*/gi, "$1***");
}

/**
 * Opens the store `env` selects, moving in the state files an earlier Loom left under `LOOM_HOME`
 * (once; `onNote` receives the line that says what was moved). The caller closes it. Plugins are
 * looked up in `registry`, so a third-party storage plugin loaded from `LOOM_PLUGINS` or a job's
 * `plugins:` can be chosen.
 * @throws LoomUsageError when no storage plugin has that name.
 */
export async function openStore(
  registry: Registry,
  context: PluginContext,
  onNote: (line: string) => void = (line) => process.stderr.write(`loom: ${line}\n`),
): Promise<StorageV2> {
  const choice = storeChoice(context.env);
  if (!registry.names("storage").includes(choice.plugin)) {
    throw new LoomUsageError(
      `LOOM_STATE ${JSON.stringify(maskUrl(choice.url ?? ""))} names no state store: ` +
        `"${choice.plugin}" is not a storage plugin (built in: sqlite, postgres, memory); ` +
        `use postgres://user@host/db, a path to a SQLite file, or a plugin's name`,
    );
  }
  const store = await registry.create("storage", choice.plugin, { url: choice.url }, context);
  // Into the store the user chose: files moved into one that dies with the process would be lost.
  if (choice.plugin === "memory") return store;
  try {
    await migrateFileState(context.home, store, { env: context.env, onNote });
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
}

/**
 * The state store of one command: opened on first use (a plan or a sync run without the cache
 * never opens it), closed by {@link StateHandle.close}. A store given by the caller (a library
 * user's, or the enclosing command's) is used as it is and left open.
 */
export class StateHandle {
  readonly #registry: Registry;
  readonly #context: PluginContext;
  readonly #given?: StorageV2;
  readonly #onNote?: (line: string) => void;
  #opened?: Promise<StorageV2>;

  constructor(
    registry: Registry,
    context: PluginContext,
    given?: StorageV2,
    onNote?: (line: string) => void,
  ) {
    this.#registry = registry;
    this.#context = context;
    this.#given = given;
    this.#onNote = onNote;
  }

  /** The store, opened now if it is not yet. */
  get(): Promise<StorageV2> {
    if (this.#given) return Promise.resolve(this.#given);
    this.#opened ??= openStore(this.#registry, this.#context, this.#onNote);
    return this.#opened;
  }

  /** Closes the store if this handle opened it. */
  async close(): Promise<void> {
    const opened = this.#opened;
    this.#opened = undefined;
    if (opened) await (await opened.catch(() => undefined))?.close();
  }
}
