/**
 * The `loom` program: commands, flags and exit codes. The work is in core/; `cli/main.ts` is the
 * executable entry that calls {@link main}.
 * @module
 */
import process from "node:process";
import { Command, CommanderError } from "commander";
import { EXIT, LoomError, systemFaultMessage } from "../core/base/errors.ts";
import { loomHome, runtimeLabel } from "../core/base/runtime.ts";
import { collectSecrets, createRedactor, redactError } from "../core/base/secrets.ts";
import { VERSION } from "../core/base/version.ts";
import { registerBatch } from "./commands/batch.ts";
import { registerCache } from "./commands/cache.ts";
import { registerCompletion } from "./completion.ts";
import { registerEstimate } from "./commands/estimate.ts";
import { registerRun } from "./commands/run.ts";
import { registerView } from "./commands/view.ts";
import { refuseUnknownCommand } from "./unknown-command.ts";

/** Builds the `loom` program. */
export function createProgram(): Command {
  const program = new Command("loom")
    .description(
      "Run datasets of prompts through LLM providers and merge the answers back into the rows.",
    )
    // The runtime too: a bug report then says which one ran Loom.
    .version(`loom ${VERSION} (${runtimeLabel()})`, "-V, --version")
    // Taken out of the arguments before parsing (see takeStateFlag), so that it works anywhere;
    // declared for the help of every command.
    .option(
      "--state <url>",
      "the state store for this command (overrides LOOM_STATE): a SQLite file or postgres:// URL",
    )
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError()
    // Commander's own complaints (unknown option, missing argument) start with "loom:" like Loom's,
    // on one line with the suggestion. Set before the commands are added: they inherit it.
    .configureOutput({
      outputError: (text, write) =>
        write(`loom: ${text.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")}\n`),
    })
    .exitOverride()
    .addHelpText(
      "after",
      "\nExamples:\n  loom jobs/hello.yaml                      run a job file (same as: loom run jobs/hello.yaml)\n" +
        "  loom run -f data.csv -p echo -m m --sync  run a job given by flags\n" +
        "  loom fetch                                check pending batch jobs, merge the finished\n" +
        "  loom list                                 list batch jobs\n" +
        "  loom plan jobs/summaries.yaml             what a job would send and cost\n" +
        "  loom tokens -f data.csv -p anthropic -m claude-sonnet-4-5   count input tokens\n" +
        "  loom view                                 look at jobs and output rows in a browser\n" +
        "  loom cache clear --yes                    empty the response cache\n" +
        '  eval "$(loom completion bash)"            complete commands and flags in bash (also zsh, fish)\n\n' +
        "State (batch jobs, the response cache) lives in LOOM_HOME/state.db (LOOM_HOME defaults to ~/.loom);\n" +
        "--state URL or LOOM_STATE picks another store: postgres://user@host/db for a team, a SQLite file path.\n\n" +
        "Exit codes:\n" +
        `  ${EXIT.ok}    done (a run where some rows failed too: their reasons are in llm_error)\n` +
        `  ${EXIT.failed}    failed: every row failed, or a provider, network or file error stopped the work\n` +
        `  ${EXIT.usage}    usage: a bad flag, job file or dataset, a missing key, or something the provider cannot do\n` +
        `  ${EXIT.interrupted}  interrupted (Ctrl-C); finished answers are kept`,
    );
  registerRun(program);
  registerBatch(program);
  registerEstimate(program);
  registerCache(program);
  registerView(program);
  registerCompletion(program);
  // `run` is the default command: a first word that is no command and no file is a typo, not a job.
  program.hook("preSubcommand", (_, command) => {
    if (command.name() === "run" && program.args[0] !== "run") {
      refuseUnknownCommand(
        program.args[0],
        program.commands.map((c) => c.name()),
      );
    }
  });
  // Subcommands inherit exitOverride only when set before they are added; set it on each.
  for (const command of program.commands) command.exitOverride();
  for (const command of program.commands.flatMap((c) => c.commands)) command.exitOverride();
  return program;
}

/** The value of `--api-key` in raw arguments, so that it can be scrubbed from any message. */
function apiKeyIn(argv: readonly string[]): string | undefined {
  const i = argv.indexOf("--api-key");
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith("--api-key="))?.slice("--api-key=".length);
}

/**
 * Takes `--state URL` (anywhere before `--`) out of `argv` and puts it into `LOOM_STATE`, where
 * every command finds its store: a flag that overrides the variable for this command.
 */
function takeStateFlag(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (arg === "--state" && i + 1 < argv.length) process.env.LOOM_STATE = argv[++i];
    else if (arg.startsWith("--state=")) process.env.LOOM_STATE = arg.slice("--state=".length);
    else out.push(arg);
  }
  return out;
}

/** Runs the CLI with `argv` (without the runtime and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  argv = takeStateFlag(argv);
  // A closed stdout (`loom … --json | head`) is not an error worth a stack trace; one that cannot
  // be written (a full disk) ends the command with one line, since its output would be lost.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") return;
    process.stderr.write(
      `loom: standard output: ${
        systemFaultMessage(error, loomHome(process.env)) ?? error.message
      }\n`,
    );
    process.exit(EXIT.failed);
  });
  const program = createProgram();
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (error) {
    redactError(error, createRedactor(collectSecrets(process.env, apiKeyIn(argv))));
    if (error instanceof CommanderError) {
      // --help and --version end with exit code 0; anything else commander rejects is usage.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (LoomError.isInstance(error)) {
      process.stderr.write(`loom: ${error.message}\n`);
      return error.exitCode;
    }
    // Operational faults (disk full, read-only, permissions…) are the machine's, not a bug: one line.
    const fault = systemFaultMessage(error, loomHome(process.env));
    if (fault !== undefined) {
      process.stderr.write(`loom: ${fault}\n`);
      return EXIT.failed;
    }
    process.stderr.write(
      `loom: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    return EXIT.failed;
  }
}
