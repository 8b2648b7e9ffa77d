/**
 * Disks a chaos trial makes for itself: tmpfs mounts (small, to be filled) and read-only mounts
 * (root ignores permission bits, so read-only has to be a mount), each unmounted when the trial
 * ends, and filler files that fill a disk and free it again.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A tmpfs page: the unit a full disk is filled and freed in. */
const PAGE = 4096;

/** The mounts a trial made, unmounted (innermost first) when it ends, whatever happened. */
export class Mounts {
  readonly #points: string[] = [];

  /** Mounts a tmpfs of `pages` pages at `dir` (made if missing), with extra mount options. */
  tmpfs(dir: string, pages: number, options: string[] = []): boolean {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (
      !mount([
        "-t",
        "tmpfs",
        "-o",
        [`size=${pages * PAGE}`, "mode=0700", ...options].join(","),
        "tmpfs",
        dir,
      ])
    ) {
      return false;
    }
    this.#points.push(dir);
    return true;
  }

  /** Makes `dir` a mount of itself, so that it can be turned read-only with its content kept. */
  bind(dir: string): boolean {
    if (!mount(["--bind", dir, dir])) return false;
    this.#points.push(dir);
    return true;
  }

  /** Remounts `dir` with these options (`ro`, `rw`, `size=…`). */
  remount(dir: string, options: string): boolean {
    const bound = this.#points.includes(dir) && !isTmpfs(dir) ? ",bind" : "";
    return mount(["-o", `remount${bound},${options}`, dir]);
  }

  /** Unmounts everything this trial mounted. */
  unmountAll(): void {
    for (const dir of this.#points.splice(0).reverse()) {
      if (!run("umount", [dir])) run("umount", ["-l", dir]);
    }
  }
}

function run(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function mount(args: string[]): boolean {
  return run("mount", args);
}

function isTmpfs(dir: string): boolean {
  try {
    return execFileSync("findmnt", ["-n", "-o", "FSTYPE", "--mountpoint", dir], {
      encoding: "utf8",
    })
      .trim() === "tmpfs";
  } catch {
    return false;
  }
}

/** Fills the disk under `dir` with page-sized filler files, then frees `free` pages of it. */
export function fill(dir: string, free: number): void {
  const page = new Uint8Array(PAGE).fill(120);
  for (let i = 0;; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), page);
    } catch {
      rmSync(join(dir, `filler-${i}`), { force: true });
      break;
    }
  }
  const fillers = readdirSync(dir).filter((f) => f.startsWith("filler-"));
  for (const f of fillers.slice(0, free)) rmSync(join(dir, f));
}

/** Removes the filler under `dir`: the user freed the disk. */
export function unfill(dir: string): void {
  for (const f of readdirSync(dir)) if (f.startsWith("filler-")) rmSync(join(dir, f));
}
