/**
 * API keys: where a run finds its provider's key, in order: `--api-key`, the provider's
 * environment variable(s), then a `.env` file in the working directory, which never overrides
 * the environment. A provider that needs a key and has none stops the run before any work, with
 * a message naming the variables to set. The key itself is never printed.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { errorMessage, LoomUsageError } from "../base/errors.ts";

/** Where a key came from, for messages (never the key itself). */
export type KeySource = "--api-key" | `$${string}` | `.env (${string})`;

/** A resolved key. */
export interface ResolvedKey {
  readonly key: string;
  readonly source: KeySource;
}

/**
 * Reads `.env` in a directory (`NAME=value` lines); an absent file is empty. A leading
 * byte-order mark (Windows editors write one) is dropped; it would otherwise become part of the
 * first variable's name.
 */
export function readDotEnv(dir: string): Record<string, string | undefined> {
  const path = join(dir, ".env");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return {};
    throw new LoomUsageError(`cannot read ${path}: ${errorMessage(error)}`);
  }
  return { ...parseEnv(text.replace(/^\uFEFF/, "")) };
}

/** Options of {@link resolveApiKey}. */
export interface KeyLookup {
  /** The `--api-key` value, when given. */
  readonly flag?: string;
  /** Environment variables to try, in order (e.g. `GOOGLE_API_KEY`, `GEMINI_API_KEY`). */
  readonly envVars: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory whose `.env` is read (the working directory). */
  readonly cwd: string;
}

/** Finds a key: the flag, then the environment, then `.env`; undefined when there is none. */
export function resolveApiKey(lookup: KeyLookup): ResolvedKey | undefined {
  const usable = (v: string | undefined): v is string => v !== undefined && v.trim() !== "";
  if (usable(lookup.flag)) return { key: lookup.flag.trim(), source: "--api-key" };
  for (const name of lookup.envVars) {
    const value = lookup.env[name];
    if (usable(value)) return { key: value.trim(), source: `$${name}` };
  }
  const dotenv = readDotEnv(lookup.cwd);
  for (const name of lookup.envVars) {
    const value = dotenv[name];
    if (usable(value)) return { key: value.trim(), source: `.env (${name})` };
  }
  return undefined;
}

/** Like {@link resolveApiKey}, but a missing key is an error that says what to set. */
export function requireApiKey(provider: string, lookup: KeyLookup): ResolvedKey {
  const found = resolveApiKey(lookup);
  if (found) return found;
  const vars = lookup.envVars.join(" or ");
  throw new LoomUsageError(
    `no API key for ${provider}: set ${vars} in the environment or in ${
      join(lookup.cwd, ".env")
    }, or pass --api-key`,
  );
}
