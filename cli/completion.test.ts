/**
 * `loom completion bash|zsh|fish`: each script comes from the real CLI, names every command and
 * flag of the program, and is checked by its own shell: parsed (`bash -n`, `zsh -n`,
 * `fish --no-execute`), then loaded and asked what it completes for a few typed lines (bash: the
 * completion function called with `COMP_WORDS` set; zsh: an interactive zsh driven through a
 * pseudo-terminal, TAB pressed; fish: `complete -C`). A shell that is not installed fails the
 * test under CI (`CI=true`), which must install them, and skips it elsewhere, saying so.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { createProgram } from "./program.ts";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";

/** Every command of the program with its path, e.g. `cache clear`, and its long flags. */
function commandsOf(command: Command, path: string[] = []): Array<[string[], string[]]> {
  return command.commands.flatMap((c) => [
    [[...path, c.name()], c.options.flatMap((o) => o.long ?? [])] as [string[], string[]],
    ...commandsOf(c, [...path, c.name()]),
  ]);
}

const installed = (shell: string) => !spawnSync(shell, ["--version"]).error;

/**
 * Whether `shell` is here to check its script. When it is not, the test fails under CI (which
 * must install it) and is skipped elsewhere, with a message saying how to install it.
 */
function shellHere(t: { skip(message?: string): void }, shell: string): boolean {
  if (installed(shell)) return true;
  const how =
    `install it (Debian: apt-get install ${shell}) to check the ${shell} completion script`;
  if (process.env.CI === "true") {
    assert.fail(`${shell} is not installed, and CI must have it: ${how}`);
  }
  t.skip(`${shell} is not installed: ${how}`);
  return false;
}

/** The script `loom completion SHELL` prints, in a file. */
async function script(shell: string): Promise<{ text: string; file: string }> {
  const result = await runCli(["completion", shell]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const file = join(tempDir(), `loom.${shell}`);
  writeFileSync(file, result.stdout);
  return { text: result.stdout, file };
}

/** A folder holding one file, `job.yaml`: what file-name completion offers there. */
function folderWithJob(): string {
  const dir = tempDir();
  writeFileSync(join(dir, "job.yaml"), "");
  return dir;
}

/** Runs a shell; asserts it exits 0 within 20 s and returns its output. */
function shellRun(command: string, args: string[], cwd?: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", cwd, timeout: 20_000 });
  assert.equal(result.error, undefined, `${command}: ${result.error}`);
  assert.equal(result.status, 0, `${command} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** What the bash script completes for the words typed so far (the last one being completed). */
function bashCompletes(file: string, words: string[]): string[] {
  const program = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _loom; ` +
    `printf '%s\\n' "\${COMPREPLY[@]}"`;
  return shellRun("bash", ["-c", program, "bash", file, ...words]).split("\n").filter(Boolean)
    .sort();
}

/** What fish completes for each line, the script loaded (`complete -C`), in a folder with job.yaml. */
function fishCompletes(file: string, lines: string[]): string[][] {
  const program = `source $argv[1]; for line in $argv[2..]; complete -C $line; echo '#end'; end`;
  const out = shellRun("fish", ["--no-config", "-c", program, file, ...lines], folderWithJob());
  // Each candidate is `word<TAB>description`; each line's list ends with `#end`.
  return out.split("#end\n").slice(0, lines.length).map((list) =>
    list.split("\n").filter(Boolean).map((c) => c.split("\t")[0]).sort()
  );
}

/**
 * Drives an interactive `zsh -f` through a pseudo-terminal (zsh/zpty): loads compinit and the
 * script as a user's .zshrc would, then types each line and TAB. `compadd` is wrapped to print
 * what the completion system offers (after matching it against the typed prefix), and
 * `comppostfuncs` marks the end of each completion.
 */
const ZSH_DRIVER = `zmodload zsh/zpty || exit 3
zpty loom zsh -f -i
zpty -w loom "PROMPT='%% ' RPROMPT=; autoload -Uz compinit; compinit -u -D; source \${(q)1}; print -r -- RE''ADY"
zpty -r loom out '*READY*' || exit 4
zpty -w loom 'compadd() { if [[ \${@[1,(i)(-|--)]} == *-[OAD]\\ * ]]; then builtin compadd "$@"; return; fi; local -a hits; builtin compadd -A hits "$@"; print -rl -- "" \${hits/#/HIT:} >/dev/tty; }'
zpty -w loom '_loom_test_done() { print -r -- "DO""NE" >/dev/tty; }'
shift
for line in "$@"; do
  zpty -w loom 'comppostfuncs=(_loom_test_done)'
  zpty -w -n loom "$line"$'\\t'
  zpty -r loom out '*DONE*' || exit 5
  for l in "\${(@f)out//$'\\r'/}"; do [[ $l == HIT:* ]] && print -r -- "\${l#HIT:}"; done
  print -r -- '#end'
  zpty -w -n loom $'\\C-u'
done
zpty -d loom
`;

/** What zsh's completion system offers for each line, in a folder with job.yaml. */
function zshCompletes(file: string, lines: string[]): string[][] {
  const driver = join(tempDir(), "driver.zsh");
  writeFileSync(driver, ZSH_DRIVER);
  const out = shellRun("zsh", ["-f", driver, file, ...lines], folderWithJob());
  return out.split("#end\n").slice(0, lines.length).map((list) =>
    [...new Set(list.split("\n").filter(Boolean))].sort()
  );
}

describe("loom completion", () => {
  const commands = commandsOf(createProgram());

  it("knows the program: every command, cache's subcommands, and flags", () => {
    const names = commands.map(([path]) => path.join(" "));
    for (const name of ["run", "fetch", "cancel", "adopt", "forget", "cache clear", "completion"]) {
      assert.ok(names.includes(name), name);
    }
  });

  for (const shell of ["bash", "zsh", "fish"]) {
    it(`prints a ${shell} script naming every command and flag`, async () => {
      const { text } = await script(shell);
      for (const [path, flags] of commands) {
        const name = path.at(-1)!;
        assert.match(text, new RegExp(`(^|[\\s'(])${name}([\\s':]|$)`, "m"), `${shell}: ${name}`);
        for (const flag of flags) {
          // fish writes `-l json`; bash and zsh write the flag itself.
          const written = shell === "fish" ? `-l ${flag.slice(2)}` : flag;
          assert.ok(text.includes(written), `${shell}: ${path.join(" ")} ${flag}`);
        }
      }
      assert.ok(text.includes("loom-batch"), `${shell}: completes loom-batch too`);
    });

    it(`${shell} parses the ${shell} script, and refuses it cut short`, async (t) => {
      if (!shellHere(t, shell)) return;
      const { text, file } = await script(shell);
      const check = shell === "fish" ? ["--no-execute"] : ["-n"];
      shellRun(shell, [...check, file]);
      // The check can fail: the script without the end of its first block is refused.
      const cut = shell === "fish"
        ? text.replace(/\nend\n$/, "\n")
        : text.replace(/\n\s*esac\n/, "\n");
      assert.notEqual(cut, text);
      const cutFile = join(tempDir(), `cut.${shell}`);
      writeFileSync(cutFile, cut);
      const refused = spawnSync(shell, [...check, cutFile], { encoding: "utf8" });
      assert.notEqual(refused.status, 0, `${shell} accepted a script cut short`);
    });
  }

  /** Typed lines and what each shell must offer for them, in a folder holding job.yaml. */
  const TYPED: Array<[string, string[]]> = [
    ["loom ru", ["run"]],
    ["loom ca", ["cache", "cancel"]],
    ["loom cache ", ["clear", "prune", "stats"]],
    ["loom cache stats --j", ["--json"]],
    ["loom-batch run --with-", ["--with-meta", "--with-usage"]],
    ["loom forget ID --f", ["--force"]],
    // A flag's value, and a command's argument: file names.
    ["loom run -f ", ["job.yaml"]],
    ["loom run ", ["job.yaml"]],
    // A command that takes no argument: nothing (no file names).
    ["loom fetch ", []],
    // An argument with a fixed set of values: those, not file names.
    ["loom completion ", ["bash", "fish", "zsh"]],
  ];

  it("bash loads the script for loom and loom-batch", async (t) => {
    if (!shellHere(t, "bash")) return;
    const { file } = await script("bash");
    const registered = shellRun("bash", [
      "-c",
      'source "$1"; complete -p loom loom-batch',
      "bash",
      file,
    ]);
    assert.match(registered, /^complete -o default -F _loom loom$/m);
    assert.match(registered, /^complete -o default -F _loom loom-batch$/m);
  });

  it("zsh, loaded with compinit, completes typed lines through the script", async (t) => {
    if (!shellHere(t, "zsh")) return;
    const { file } = await script("zsh");
    const offered = zshCompletes(file, TYPED.map(([line]) => line));
    TYPED.forEach(([line, expected], i) => assert.deepEqual(offered[i], expected, `zsh: ${line}`));
  });

  it("fish, the script loaded, completes typed lines (complete -C)", async (t) => {
    if (!shellHere(t, "fish")) return;
    const { file } = await script("fish");
    const offered = fishCompletes(file, TYPED.map(([line]) => line));
    TYPED.forEach(([line, expected], i) => assert.deepEqual(offered[i], expected, `fish: ${line}`));
  });

  it("fish loads the script installed as the README says, for loom and for loom-batch", async (t) => {
    if (!shellHere(t, "fish")) return;
    const { text } = await script("fish");
    // The README's install: the script under both names in fish's completions folder, which
    // fish reads only when the command of that name is completed first.
    // fish autoloads a command's file only for a command on the PATH: two stand-ins.
    const config = tempDir();
    const bin = tempDir();
    const completions = join(config, "fish", "completions");
    mkdirSync(completions, { recursive: true });
    for (const name of ["loom", "loom-batch"]) {
      writeFileSync(join(bin, name), "#!/bin/sh\n", { mode: 0o755 });
    }
    const first = (line: string) =>
      spawnSync("fish", ["-c", `complete -C '${line}'`], {
        encoding: "utf8",
        cwd: folderWithJob(),
        env: { ...process.env, XDG_CONFIG_HOME: config, PATH: `${bin}:${process.env.PATH}` },
        timeout: 20_000,
      }).stdout.split("\n").filter(Boolean).map((c) => c.split("\t")[0]).sort();
    writeFileSync(join(completions, "loom.fish"), text);
    assert.deepEqual(first("loom fe"), ["fetch"]);
    // loom.fish alone: a new fish completes loom-batch with file names (why both are installed).
    assert.deepEqual(first("loom-batch fe"), []);
    writeFileSync(join(completions, "loom-batch.fish"), text);
    assert.deepEqual(first("loom-batch fe"), ["fetch"], "loom-batch first, in a new fish");
  });

  it("the bash script completes commands, subcommands and flags, and leaves values to files", async (t) => {
    if (!shellHere(t, "bash")) return;
    const { file } = await script("bash");
    assert.deepEqual(bashCompletes(file, ["loom", "ca"]), ["cache", "cancel"]);
    assert.deepEqual(bashCompletes(file, ["loom", "cache", ""]), ["clear", "prune", "stats"]);
    assert.deepEqual(bashCompletes(file, ["loom", "completion", ""]), ["bash", "fish", "zsh"]);
    assert.deepEqual(bashCompletes(file, ["loom", "cache", "stats", "--j"]), ["--json"]);
    assert.deepEqual(bashCompletes(file, ["loom", "forget", "ID", "--f"]), ["--force"]);
    assert.deepEqual(bashCompletes(file, ["loom", "run", "--with-"]), [
      "--with-meta",
      "--with-usage",
    ]);
    // After a flag that takes a value, nothing: bash falls back to file names (-o default).
    assert.deepEqual(bashCompletes(file, ["loom", "run", "-f", ""]), []);
  });

  it("refuses an unknown shell with exit 2, naming the ones it knows", async () => {
    const result = await runCli(["completion", "powershell"]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^loom: .*'powershell' is invalid for argument 'shell'\. Allowed choices are bash, zsh, fish\.\n$/,
    );
  });
});
