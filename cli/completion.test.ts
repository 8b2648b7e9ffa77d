/**
 * `loom completion bash|zsh|fish`: each script comes from the real CLI, names every command and
 * flag of the program, and parses in its shell (bash always; zsh and fish when installed). The bash
 * one is also run: completions for a few typed lines.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
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

/** The script `loom completion SHELL` prints, in a file. */
async function script(shell: string): Promise<{ text: string; file: string }> {
  const result = await runCli(["completion", shell]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const file = join(tempDir(), `loom.${shell}`);
  writeFileSync(file, result.stdout);
  return { text: result.stdout, file };
}

/** What the bash script completes for the words typed so far (the last one being completed). */
function bashCompletes(file: string, words: string[]): string[] {
  const program = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _loom; ` +
    `printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync("bash", ["-c", program, "bash", file, ...words], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split("\n").filter(Boolean).sort();
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
      const { text, file } = await script(shell);
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
      if (shell === "bash" || installed(shell)) {
        const checked = spawnSync(shell, ["-n", file], { encoding: "utf8" });
        assert.equal(checked.status, 0, `${shell} -n: ${checked.stderr}`);
      }
    });
  }

  it("the bash script completes commands, subcommands and flags, and leaves values to files", async () => {
    const { file } = await script("bash");
    assert.deepEqual(bashCompletes(file, ["loom", "ca"]), ["cache", "cancel"]);
    assert.deepEqual(bashCompletes(file, ["loom", "cache", ""]), ["clear", "prune", "stats"]);
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
      /^loom: unknown shell "powershell"; give one of: bash, zsh, fish\n$/,
    );
  });
});
