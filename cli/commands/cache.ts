/**
 * `loom cache clear [--yes]`: removes every cached answer. Asks first on a terminal; elsewhere it
 * refuses unless `--yes` says so.
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { ResponseCache } from "../../core/cache.ts";
import { LoomUsageError } from "../../core/errors.ts";
import { Registry } from "../../core/registry.ts";
import { isInteractive, loomHome } from "../../core/runtime.ts";
import { askYesNo } from "../ask.ts";

/** Registers `cache` and its subcommands on the program. */
export function registerCache(program: Command): void {
  const cache = program.command("cache").description(
    "manage the response cache (in LOOM_HOME, default ~/.loom)",
  );
  cache
    .command("clear")
    .description("remove every cached answer")
    .option("-y, --yes", "do not ask")
    .action(async (flags: { yes?: boolean }) => {
      const env = { ...process.env };
      const storage = await new Registry().create("storage", "fs", {}, {
        env,
        home: loomHome(env),
      });
      if (!flags.yes) {
        if (!isInteractive()) {
          throw new LoomUsageError(
            "refusing to clear the cache without --yes (not a terminal to ask on)",
          );
        }
        if (!(await askYesNo(`Remove every cached answer under ${storage.location}?`))) {
          process.stderr.write("loom: cache left as it was\n");
          return;
        }
      }
      const removed = await new ResponseCache(storage).clear();
      process.stdout.write(`removed ${removed} cached answer(s) from ${storage.location}\n`);
    });
}
