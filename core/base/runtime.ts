/**
 * The one place that knows which runtime Loom runs on. Everything else uses `node:` builtins,
 * which Deno and Node both provide; only the differences live here.
 * @module
 */
import type { Buffer } from "node:buffer";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The JavaScript runtime in use. */
export type RuntimeName = "deno" | "node";

/** Which runtime is running Loom. */
export function runtimeName(): RuntimeName {
  return "Deno" in globalThis ? "deno" : "node";
}

/** The runtime and its version as users name them, e.g. `Node 22.23.3` or `Deno 2.9.6`. */
export function runtimeLabel(): string {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  return deno ? `Deno ${deno.version.deno}` : `Node ${process.versions.node}`;
}

const utf8 = new TextEncoder();

/**
 * Writes `text` in UTF-8 into `into` from byte `at` and returns how many bytes it took; the caller
 * leaves room (3 bytes a UTF-16 unit). For many short strings (a million spool lines): Node's
 * `Buffer#write` is native and the faster, Deno's is JavaScript over `TextEncoder`, where
 * `encodeInto` on a plain view takes some 40% less time.
 */
export const writeUtf8: (into: Buffer, text: string, at: number) => number = "Deno" in globalThis
  ? (into, text, at) =>
    utf8.encodeInto(text, new Uint8Array(into.buffer, into.byteOffset + at, into.length - at))
      .written
  : (into, text, at) => into.write(text, at);

/** Loom's home directory: `$LOOM_HOME`, default `~/.loom`. */
export function loomHome(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const configured = env.LOOM_HOME;
  return configured ? resolve(configured) : join(homedir(), ".loom");
}

/**
 * The command that starts Loom's CLI on the current runtime, from source under Deno and from the
 * build under Node. Tests use it to run Loom as a real child process.
 */
export function cliCommand(): { command: string; args: string[] } {
  // This file is core/base/runtime.ts in the source tree and dist/core/base/runtime.js in the build;
  // the CLI sits beside core/ in both, with the same extension.
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const main = fileURLToPath(new URL(`../../cli/main${ext}`, import.meta.url));
  if (runtimeName() === "deno") return { command: process.execPath, args: ["run", "-A", main] };
  return { command: process.execPath, args: [main] };
}

/** True when both stdin and stderr are terminals, so Loom may ask questions and draw a bar. */
export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}
