/**
 * The user's files are never overwritten: a run (and, in batch mode, a fetch) is pointed at an
 * output that is the input through a symbolic link, a hard link or another spelling of its path;
 * at an existing file of the user's (or a link to one), with and without `--force`; at standard
 * output (`-o -`); and into folders that do not exist yet. Batch trials also change the output
 * path between submission and fetch: a file the user wrote there meanwhile (kept until `fetch
 * --force`), or a link to the input (never written, even with `--force`).
 *
 * What must hold: a refusal is exit 2 with a `loom:` message, leaves every file as it was and
 * (batch) creates no batch and keeps the job; `--force` replaces an ordinary file (and a link's
 * target, the link kept) but never the input; every written output has every row.
 * @module
 */
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import type { Rng } from "../rng.ts";
import type { Scenario } from "../scenario.ts";
import { type ChaosProvider, type CommandResult, firstLine, type Trial } from "../trial.ts";

type Mode = "sync" | "batch";

/** One hostile situation; each trial tries every one that fits its mode, in a random order. */
interface Hazard {
  readonly name: string;
  readonly modes: readonly Mode[];
  run(w: Workspace): Promise<void>;
}

/** A trial with what the hazards share: its mode, random source, and batches paid so far. */
class Workspace {
  /** Batches the trial's successful submissions may have created (at most). */
  paid = 0;

  readonly t: Trial;
  readonly rng: Rng;
  readonly mode: Mode;

  constructor(t: Trial, rng: Rng, mode: Mode) {
    this.t = t;
    this.rng = rng;
    this.mode = mode;
  }

  /** `loom run job.yaml -o <out>`; in batch mode it waits for the batches and merges. */
  run(out: string, ...extra: string[]): Promise<CommandResult> {
    const wait = this.mode === "batch" ? ["--wait", "--poll", "0.2"] : [];
    return this.t.loom(["run", "job.yaml", "-o", out, ...wait, ...extra]);
  }

  /** `loom run` in batch mode without waiting: the job is submitted and left pending. */
  submit(out: string, ...extra: string[]): Promise<CommandResult> {
    return this.t.loom(["run", "job.yaml", "-o", out, ...extra]);
  }

  /** `loom fetch --wait`: every pending job, merged once its batches have ended. */
  fetchWaiting(...extra: string[]): Promise<CommandResult> {
    return this.t.loom(["fetch", "--wait", "--poll", "0.2", ...extra]);
  }

  /** Runs `command` and records it if it created a batch. */
  async noBatch(what: string, command: () => Promise<CommandResult>): Promise<CommandResult> {
    const before = this.t.creations();
    const result = await command();
    const after = this.t.creations();
    this.t.expect(after === before, `${what} created ${after - before} batch(es)`);
    return result;
  }

  /**
   * Expects a refusal: exit 2 and a message starting `loom:` that matches `why`, on one line of
   * its own unless `oneLine` is false (other lines, such as notes and progress, may come before).
   */
  refused(what: string, result: CommandResult, why: RegExp, oneLine = true): void {
    const said = result.stderr.trim();
    const lines = said.split("\n");
    const ok = oneLine
      ? lines.some((l) => l.startsWith("loom:") && why.test(l))
      : lines.some((l, i) => l.startsWith("loom:") && why.test(lines.slice(i).join("\n")));
    this.t.expect(
      result.code === 2 && ok,
      `${what}: expected exit 2 and a refusal matching ${why}${
        oneLine ? " on one line" : ""
      }, got exit ${result.code}: ${said.slice(0, 300)}`,
    );
  }

  /** Expects success; a batch success counts its shards as paid. */
  succeeded(what: string, result: CommandResult, submitted = false): boolean {
    if (submitted) this.paid += this.t.shards;
    return this.t.expect(
      result.code === 0,
      `${what} exited ${result.code}: ${firstLine(result.stderr)}`,
    );
  }

  /** The job ids `loom list` shows. */
  async jobIds(): Promise<string[]> {
    return (await this.t.jobs()).map((j) => j.id);
  }

  path(name: string): string {
    return join(this.t.dir, name);
  }

  /** Writes a file of the user's (its folder made), protected from now on. */
  userFile(name: string, text: string): string {
    const path = this.path(name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    this.t.protect(path);
    return path;
  }

  /**
   * Makes `name` a link to the input (symbolic, hard), or returns another path to it: another
   * spelling, or the input's name in a linked folder (`here/in.csv`, `here` a link to `.`).
   */
  linkToInput(name: string, kind: LinkKind): string {
    if (kind === "alias") {
      if (!isLink(this.path("here"))) symlinkSync(".", this.path("here"));
      return this.rng.pick(["./in.csv", "sub/../in.csv", `${this.t.dir}/in.csv`, "here/in.csv"]);
    }
    const path = this.path(name);
    mkdirSync(dirname(path), { recursive: true });
    if (kind === "symlink") {
      symlinkSync(this.rng.chance(0.5) ? this.t.input : relativeTo(name, "in.csv"), path);
    } else linkSync(this.t.input, path);
    this.t.protect(path);
    return name;
  }

  /** Removes a link the hazard made (the scenario's own doing, not Loom's). */
  unlink(name: string): void {
    const path = this.path(name);
    this.t.release(path);
    if (existsSync(path) || isLink(path)) rmSync(path);
  }
}

type LinkKind = "symlink" | "hardlink" | "alias";

/** `target` as seen from the folder of `from` (both relative to the trial's folder). */
function relativeTo(from: string, target: string): string {
  const depth = from.split("/").length - 1;
  return `${"../".repeat(depth)}${target}`;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A name for an output the user picks: beside the input, or in a folder of its own. */
function outputName(rng: Rng, base: string): string {
  return rng.pick([`${base}.csv`, `results/${base}.csv`, `a b/${base} (1).csv`]);
}

const HAZARDS: readonly Hazard[] = [
  {
    name: "output is the input through a link",
    modes: ["sync", "batch"],
    async run(w) {
      const kind = w.rng.pick<LinkKind>(["symlink", "hardlink", "alias"]);
      const name = w.rng.pick(["out.csv", "link.csv", "sub/link.csv"]);
      mkdirSync(w.path("sub"), { recursive: true });
      const out = w.linkToInput(name, kind);
      const force = w.rng.chance(0.5) ? ["--force"] : [];
      const what = `run -o ${out} (${kind} to the input) ${force.join(" ")}`;
      const result = await w.noBatch(what, () => w.run(out, ...force));
      w.refused(what, result, /overwrite the input/, false);
      if (kind !== "alias") w.unlink(name);
    },
  },
  {
    name: "an existing file of the user's at the output",
    modes: ["sync", "batch"],
    async run(w) {
      const name = outputName(w.rng, "mine");
      // The user's file, or a link to it (the file it points to is what --force replaces).
      const viaLink = w.rng.chance(0.4);
      const target = w.userFile(viaLink ? `keep/${name}` : name, "my,own\nnotes,here\n");
      if (viaLink) {
        mkdirSync(dirname(w.path(name)), { recursive: true });
        symlinkSync(target, w.path(name));
        w.t.protect(w.path(name));
      }
      const what = `run -o ${name}${viaLink ? " (a link to a file)" : ""}`;
      const refused = await w.noBatch(what, () => w.run(name));
      w.refused(what, refused, /exists; pass --force/);
      const later = w.mode === "batch" ? w.rng.pick(["wait", "fetch", "edited"]) : "wait";
      if (later === "edited") {
        // The run agreed to replace the file as it was then; the user wrote it again meanwhile,
        // so the fetch asks anew (refuses here) until --force.
        const submitted = await w.submit(name, "--force");
        if (!w.succeeded(`${what} --force`, submitted, true)) return;
        writeFileSync(target, "my,own\nnotes,here\nand,more\n");
        w.t.protect(target);
        const again = await w.noBatch("fetch", () => w.fetchWaiting());
        w.refused(`fetch into ${name}, written again since the run`, again, /exists; pass --force/);
      }
      w.t.release(target);
      w.t.release(w.path(name));
      let done: CommandResult;
      if (later === "wait") {
        done = await w.run(name, "--force");
        w.succeeded(`${what} --force`, done, w.mode === "batch");
      } else {
        // The run's --force stands for its own merge: a plain fetch replaces the file.
        if (later === "fetch") {
          const submitted = await w.submit(name, "--force");
          if (!w.succeeded(`${what} --force`, submitted, true)) return;
        }
        const extra = later === "edited" ? ["--force"] : [];
        done = await w.noBatch("fetch", () => w.fetchWaiting(...extra));
        w.succeeded(`fetch ${extra.join(" ")} into ${name}`, done);
      }
      if (done.code === 0) w.t.checkOutput(target);
      if (viaLink) w.t.expect(isLink(w.path(name)), `${what} --force replaced the link itself`);
    },
  },
  {
    name: "something other than a file at the output",
    modes: ["sync", "batch"],
    async run(w) {
      const what = w.rng.pick(["a dangling link", "a folder", "a link to a folder"]);
      const name = w.rng.pick(["odd.csv", "deep/odd.csv"]);
      mkdirSync(dirname(w.path(name)), { recursive: true });
      if (what === "a folder") mkdirSync(w.path(name));
      else {
        if (what === "a link to a folder") mkdirSync(w.path("somewhere"), { recursive: true });
        const target = what === "a dangling link" ? "gone/nothing.csv" : w.path("somewhere");
        symlinkSync(target, w.path(name));
      }
      const force = w.rng.chance(0.5) ? ["--force"] : [];
      const label = `run -o ${name} (${what}) ${force.join(" ")}`;
      const result = await w.noBatch(label, () => w.run(name, ...force));
      w.refused(label, result, /link to nothing|directory|not a regular file/, false);
      w.t.expect(!existsSync(w.path("gone")), `${label} made the folder a dangling link names`);
      rmSync(w.path(name), { recursive: true });
    },
  },
  {
    name: "standard output",
    modes: ["sync", "batch"],
    async run(w) {
      if (w.mode === "batch") {
        const result = await w.noBatch("run -o - in batch mode", () => w.submit("-"));
        w.refused("run -o - in batch mode", result, /standard output.*sync/);
      } else {
        const result = await w.run("-", ...(w.rng.chance(0.5) ? ["-q"] : []));
        if (w.succeeded("run -o -", result)) {
          const copy = w.path("stdout-copy.csv");
          writeFileSync(copy, result.stdout);
          w.t.checkOutput(copy);
          rmSync(copy);
          w.t.expect(!/^loom:/m.test(result.stdout), "run -o - printed messages on stdout");
        }
      }
      w.t.expect(!existsSync(w.path("-")), "run -o - wrote a file named -");
    },
  },
  {
    name: "an output in folders that do not exist yet",
    modes: ["sync", "batch"],
    async run(w) {
      const depth = w.rng.int(1, 3);
      const name = [...Array(depth)].map((_, i) => `new${i}`).join("/") + "/out.csv";
      if (w.mode === "sync" || w.rng.chance(0.5)) {
        const result = await w.run(name);
        if (w.succeeded(`run -o ${name}`, result, w.mode === "batch")) {
          w.t.checkOutput(w.path(name));
        }
        return;
      }
      // Submitted now, merged by a later fetch (the folders are made by then, or at the merge).
      const submitted = await w.submit(name);
      if (!w.succeeded(`run -o ${name}`, submitted, true)) return;
      const fetched = await w.noBatch(
        "fetch",
        () => w.t.loom(["fetch", "--wait", "--poll", "0.2"]),
      );
      if (w.succeeded(`fetch into ${name}`, fetched)) w.t.checkOutput(w.path(name));
    },
  },
  {
    name: "the output path changes between submission and fetch",
    modes: ["batch"],
    async run(w) {
      const name = outputName(w.rng, "later");
      const submitted = await w.submit(name);
      if (!w.succeeded(`run -o ${name}`, submitted, true)) return;
      const [id] = await w.jobIds();
      const select = w.rng.pick([[], ["--id", id], ["-a"], ["--no-all"]]);
      const fetch = (...extra: string[]) =>
        w.noBatch(
          `fetch ${[...select, ...extra].join(" ")}`,
          () => w.t.loom(["fetch", ...select, "--wait", "--poll", "0.2", ...extra]),
        );
      const change = w.rng.pick(["link", "file", "folder", "gone"]);
      if (change === "folder" || change === "gone") {
        // The output's name is now a folder (refused, the job kept, fetched once it is moved),
        // or the output's folder was removed (made again at the merge).
        if (change === "folder") {
          mkdirSync(w.path(name), { recursive: true });
          const refused = await fetch(...(w.rng.chance(0.5) ? ["--force"] : []));
          w.refused(`fetch into ${name}, now a folder`, refused, /directory/, false);
          w.t.expect((await w.jobIds()).includes(id), `job ${id} was lost by a refused fetch`);
          rmSync(w.path(name), { recursive: true });
        } else if (name.includes("/")) {
          rmSync(dirname(w.path(name)), { recursive: true, force: true });
        }
      } else if (change === "link") {
        // The output became a link to the input: never written, --force or not.
        w.linkToInput(name, w.rng.pick<LinkKind>(["symlink", "hardlink"]));
        const refused = await fetch(...(w.rng.chance(0.5) ? ["--force"] : []));
        w.refused(
          `fetch into ${name}, a link to the input`,
          refused,
          /overwrite the input.*stays fetchable/,
        );
        w.t.expect((await w.jobIds()).includes(id), `job ${id} was lost by a refused fetch`);
        w.unlink(name);
      } else {
        // The user wrote a file there meanwhile: kept until --force.
        const mine = w.userFile(name, "draft\n");
        const refused = await fetch();
        w.refused(
          `fetch into ${name}, a file of the user's`,
          refused,
          /exists; pass --force.*fetchable/,
        );
        w.t.expect((await w.jobIds()).includes(id), `job ${id} was lost by a refused fetch`);
        w.t.release(mine);
        const forced = await fetch("--force");
        if (w.succeeded(`fetch --force into ${name}`, forced)) w.t.checkOutput(mine);
        return;
      }
      const fetched = await fetch();
      if (w.succeeded(`fetch into ${name}`, fetched)) w.t.checkOutput(w.path(name));
    },
  },
];

/** The hazards in a random order. */
function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export const userFiles: Scenario = {
  name: "files",
  about:
    "outputs that are links to the input, existing files, -o - and new folders; --force or not",
  variants: ["sync", "batch"],
  async run(ctx, variant) {
    const mode = variant as Mode;
    const provider = ctx.rng.pick<ChaosProvider>(["openai", "anthropic", "google", "echo"]);
    const t = await ctx.open({
      provider,
      mode,
      prompts: ctx.rng.pick([undefined, ["one", "two"]]),
    });
    const w = new Workspace(t, ctx.rng, mode);
    for (const hazard of shuffled(ctx.rng, HAZARDS.filter((h) => h.modes.includes(mode)))) {
      await hazard.run(w);
    }
    t.checkPayments(w.paid);
  },
};
