/**
 * `loom cache clear|stats|prune`: the response cache in the state store (`LOOM_STATE`, default
 * `LOOM_HOME/state.db`). What removes entries asks first on a terminal; elsewhere it refuses
 * unless `--yes` says so.
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { LoomUsageError } from "../../core/base/errors.ts";
import { Registry } from "../../core/plugins/registry.ts";
import { isInteractive, loomHome } from "../../core/base/runtime.ts";
import type { StorageV2 } from "../../core/spec/storage.ts";
import { parseDuration } from "../../core/state/duration.ts";
import { openStore } from "../../core/state/open.ts";
import { askYesNo } from "../ask.ts";

/** What the cache commands use besides the store: the user's say, the clock, and the outputs. */
export interface CacheCommandIo {
  /** `--yes`: do not ask. */
  readonly yes?: boolean;
  /** Whether there is a terminal to ask on. */
  readonly interactive: boolean;
  ask(question: string): Promise<boolean>;
  /** A line of the command's result (stdout). */
  out(line: string): void;
  /** A line for the user (stderr), without the `loom: ` prefix. */
  note(line: string): void;
  /** The time now (ms since the epoch). */
  now(): number;
}

/** Throws unless the user said yes (`--yes`) or can be asked; `what` is e.g. `clear the cache`. */
export function requireConsent(io: CacheCommandIo, what: string): void {
  if (!io.yes && !io.interactive) {
    throw new LoomUsageError(`refusing to ${what} without --yes (not a terminal to ask on)`);
  }
}

/** Whether the user agrees to `question` (yes without asking under `--yes`). */
async function agreed(io: CacheCommandIo, what: string, question: string): Promise<boolean> {
  requireConsent(io, what);
  if (io.yes || (await io.ask(question))) return true;
  io.note("cache left as it was");
  return false;
}

function answers(n: number): string {
  return `${n.toLocaleString("en-US")} cached answer${n === 1 ? "" : "s"}`;
}

/** `loom cache clear`: removes every entry; `json` for scripts. */
export async function clearCache(
  store: StorageV2,
  io: CacheCommandIo,
  json = false,
): Promise<void> {
  const question = `Remove every cached answer in ${store.location}?`;
  if (!(await agreed(io, "clear the cache", question))) return;
  const removed = await store.cache.clear();
  io.out(
    json
      ? JSON.stringify({ location: store.location, removed })
      : `removed ${answers(removed)} from ${store.location}`,
  );
}

/**
 * `loom cache prune --older-than <duration>`: removes the entries stored before now − duration;
 * `json` for scripts.
 * @throws LoomUsageError for a duration that is not one (before anything is asked or removed).
 */
export async function pruneCache(
  store: StorageV2,
  olderThan: string,
  io: CacheCommandIo,
  json = false,
): Promise<void> {
  const before = io.now() - parseDuration(olderThan);
  const when = formatTime(before);
  const question = `Remove the cached answers stored before ${when} from ${store.location}?`;
  if (!(await agreed(io, "prune the cache", question))) return;
  const removed = await store.cache.prune(before);
  io.out(
    json
      ? JSON.stringify({
        location: store.location,
        removed,
        before: new Date(before).toISOString(),
      })
      : `removed ${answers(removed)} stored before ${when} from ${store.location}`,
  );
}

/** `loom cache stats`: entries, size, oldest and newest, and where; `json` for scripts. */
export async function showCacheStats(
  store: StorageV2,
  io: CacheCommandIo,
  json = false,
): Promise<void> {
  const stats = await store.cache.stats();
  const iso = (at?: number) => (at === undefined ? null : new Date(at).toISOString());
  if (json) {
    io.out(JSON.stringify({
      location: store.location,
      entries: stats.entries,
      bytes: stats.bytes,
      oldest: iso(stats.oldest),
      newest: iso(stats.newest),
    }));
    return;
  }
  const lines = [
    `cache of ${store.location}`,
    `  entries  ${stats.entries.toLocaleString("en-US")}`,
    `  size     ${formatBytes(stats.bytes)} (keys and answers)`,
  ];
  if (stats.oldest !== undefined) lines.push(`  oldest   ${formatTime(stats.oldest)}`);
  if (stats.newest !== undefined) lines.push(`  newest   ${formatTime(stats.newest)}`);
  for (const line of lines) io.out(line);
}

/** Bytes in binary units, one decimal above a KiB (`512 B`, `1.5 KiB`, `38.2 MiB`). */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A time as people read it, in UTC to the second (`2026-12-04 19:16:56 UTC`). */
export function formatTime(at: number): string {
  return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** Opens the store `LOOM_STATE` selects, runs `fn` on it, and closes it. */
async function withStore(fn: (store: StorageV2) => Promise<void>): Promise<void> {
  const env = { ...process.env };
  const store = await openStore(new Registry(), { env, home: loomHome(env) });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

function terminalIo(yes?: boolean): CacheCommandIo {
  return {
    yes,
    interactive: isInteractive(),
    ask: askYesNo,
    out: (line) => process.stdout.write(`${line}\n`),
    note: (line) => process.stderr.write(`loom: ${line}\n`),
    now: Date.now,
  };
}

/** Registers `cache` and its subcommands on the program. */
export function registerCache(program: Command): void {
  const cache = program.command("cache").description(
    "manage the response cache (in the state store: LOOM_STATE, default LOOM_HOME/state.db)",
  );
  cache
    .command("clear")
    .description("remove every cached answer")
    .option("-y, --yes", "do not ask")
    .option("--json", "print one JSON object (removed: how many answers)")
    .action(async (flags: { yes?: boolean; json?: boolean }) => {
      const io = terminalIo(flags.yes);
      requireConsent(io, "clear the cache"); // before the store is opened
      await withStore((store) => clearCache(store, io, flags.json));
    });
  cache
    .command("stats")
    .description("how many answers are cached, their size, the oldest and the newest")
    .option("--json", "print one JSON object")
    .action(async (flags: { json?: boolean }) => {
      await withStore((store) => showCacheStats(store, terminalIo(), flags.json));
    });
  cache
    .command("prune")
    .description("remove the answers cached longer ago than a duration")
    .requiredOption("--older-than <duration>", "e.g. 30d, 12h, 90m, 45s or 2w")
    .option("-y, --yes", "do not ask")
    .option("--json", "print one JSON object (removed: how many answers; before: the cut-off)")
    .action(async (flags: { olderThan: string; yes?: boolean; json?: boolean }) => {
      const io = terminalIo(flags.yes);
      parseDuration(flags.olderThan); // a bad duration is told before anything else
      requireConsent(io, "prune the cache");
      await withStore((store) => pruneCache(store, flags.olderThan, io, flags.json));
    });
}
