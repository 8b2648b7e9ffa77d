/**
 * Output files: the default name, the overwrite rule, and atomic writing (a temporary file in
 * the same directory, renamed into place once complete, so no crash leaves half a file).
 * @module
 */
import { Buffer } from "node:buffer";
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  stat,
} from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import process from "node:process";
import { errorMessage, LoomError, LoomUsageError, systemFaultMessage } from "../base/errors.ts";

const TMP_SUFFIX = ".loom-tmp";

/** Replaces characters that are unsafe in file names (`/`, `:`, spaces, …) with `_`. */
export function safeFileComponent(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * The default output path: `<name>_results_<provider>_<model>.<ext>` beside the input, where
 * `.gz` is dropped (`data.csv.gz` → `data_results_openai_gpt-4o-mini.csv`).
 */
export function defaultOutputPath(
  input: string,
  provider: string,
  model: string,
  ext?: string,
): string {
  const file = basename(input).replace(/\.gz$/i, "");
  const inputExt = extname(file);
  const name = inputExt ? file.slice(0, -inputExt.length) : file;
  return join(
    dirname(input),
    `${name}_results_${safeFileComponent(provider)}_${safeFileComponent(model)}${ext ?? inputExt}`,
  );
}

/** Longest file name most filesystems accept, in bytes. */
const MAX_NAME_BYTES = 255;

/**
 * Checks, before any work, that an output can be written at `path`: its folder exists or can be
 * made and a file can be created in it (tried for real), its name is not too long, and whatever is there now is a regular file.
 * A symbolic link is followed, so the file it points to is replaced and the link kept. Returns
 * the path to write. Throws `LoomUsageError` saying what is wrong, or a plain `LoomError` for a
 * disk fault (a read-only or full filesystem, permissions).
 */
export async function checkOutputPath(path: string): Promise<string> {
  let target = path;
  const link = await lstat(path).catch(() => undefined);
  if (link?.isSymbolicLink()) {
    target = await realpath(path).catch(() => {
      throw new LoomUsageError(
        `${path} is a symbolic link to nothing; remove it or choose another output`,
      );
    });
  }
  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new LoomUsageError(`${path} is a directory; give the output a file name`);
  }
  if (existing && !existing.isFile()) {
    throw new LoomUsageError(`${path} is not a regular file; choose another output`);
  }
  if (Buffer.byteLength(basename(target)) > MAX_NAME_BYTES - 32) {
    throw new LoomUsageError(
      `the output file name is too long (${
        basename(target).length
      } characters); choose a shorter one`,
    );
  }
  const dir = dirname(target);
  try {
    await mkdir(dir, { recursive: true });
    await probeWritable(target);
  } catch (error) {
    // A disk fault (read-only, full, permissions) is the machine's, not the job's: one line, exit
    // code 1, as every operational fault; told by its code alone, since the path the call failed
    // on is Loom's probe file, not one the user knows.
    const code = (error as { code?: unknown }).code;
    const fault = systemFaultMessage({ code });
    if (fault !== undefined && code !== "ENOENT") {
      const where = fault.endsWith(" place") ? " (--output or output.path)" : "";
      throw new LoomError(`cannot write an output in ${dir}: ${fault}${where}`);
    }
    throw new LoomUsageError(`cannot write an output in ${dir}: ${errorMessage(error)}`);
  }
  return target;
}

/**
 * Creates and removes a temporary file beside `path`: the only check that holds on every runtime
 * and filesystem (mode bits say nothing of a read-only mount, and root passes `access` anyway).
 */
async function probeWritable(path: string): Promise<void> {
  const probe = join(
    dirname(path),
    `${tempPrefix(path)}${process.pid}.${++tempCounter}.probe${TMP_SUFFIX}`,
  );
  const file = await open(probe, "wx", 0o600);
  await file.close();
  await rm(probe, { force: true });
}

/** True when a file exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

let tempCounter = 0;

function tempPrefix(path: string): string {
  return `.${basename(path)}.`;
}

/** Whether a process with this id is running (ours or another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/** Removes temporary files a killed run left beside `path` (those whose process is gone). */
export async function removeStaleTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TMP_SUFFIX)) continue;
    const pid = Number(name.slice(prefix.length, -TMP_SUFFIX.length).split(".")[0]);
    if (Number.isInteger(pid) && !isAlive(pid)) await rm(join(dir, name), { force: true });
  }
}

/**
 * Writes chunks (text, or bytes as they are) to `path` atomically: into
 * `.<name>.<pid>.loom-tmp` beside it, flushed to disk, then renamed over `path`. On any error (or
 * abort) the temporary file is removed and `path` is left as it was. `mode` sets the file's
 * permissions (state files are private).
 */
export async function writeFileAtomic(
  path: string,
  chunks: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  options: {
    mode?: number;
    dirMode?: number;
    /** Called with the complete temporary file just before it is renamed over `path`. */
    beforeRename?: (tmp: string) => Promise<void>;
    /**
     * Flush the file to disk before the rename (default true). A killed process leaves the old
     * file or the new one either way; without the flush, an operating-system crash may leave an
     * empty one. Only for files that stand for something outside Loom (echo's simulated uploads).
     */
    durable?: boolean;
  } = {},
): Promise<void> {
  await mkdir(dirname(path), {
    recursive: true,
    ...(options.dirMode ? { mode: options.dirMode } : {}),
  });
  await removeStaleTemps(path);
  // The pid comes first (the sweep reads it); the counter keeps two writes of one process apart.
  const tmp = join(
    dirname(path),
    `${tempPrefix(path)}${process.pid}.${++tempCounter}${TMP_SUFFIX}`,
  );
  const file = await open(tmp, "w", options.mode).catch((error) => {
    throw new LoomError(`cannot write ${path}: ${faultOf(error)}`, { cause: error });
  });
  /** The write in flight: a text chunk is written while the next one is made. */
  let writing: Promise<void> | undefined;
  try {
    for await (const chunk of chunks) {
      await writing;
      writing = undefined;
      if (typeof chunk !== "string") {
        // Bytes may be a buffer the producer fills again once asked for more: written first.
        await writeAll(file, chunk);
        continue;
      }
      writing = writeAll(file, Buffer.from(chunk));
      // Awaited before anything else; this only keeps a failure meanwhile from going unhandled.
      writing.catch(() => {});
    }
    await writing;
    if (options.durable !== false) await file.sync();
    await file.close();
    await options.beforeRename?.(tmp);
    await rename(tmp, path);
  } catch (error) {
    // A write still in flight ends before the file is closed.
    await writing?.catch(() => {});
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    // Errors of the rows being written (an abort, a provider) pass through; file errors say where.
    if (LoomError.isInstance(error) || !(error as { code?: unknown }).code) throw error;
    throw new LoomError(`cannot write ${path}: ${faultOf(error)}`, { cause: error });
  }
}

/**
 * Writes the whole of `text`. One write may take only part of it: Node's resolves with the
 * bytes the system took (`bytesWritten`, as its docs say; write(2) may write fewer bytes than
 * asked, as on a disk that fills up) instead of failing, and a loop that ignored it wrote a
 * truncated output and reported success. The next write fails with the reason.
 * unverified: that Deno's node:fs throws at once instead (observed on a full tmpfs, not
 * documented); the loop holds either way.
 */
async function writeAll(file: FileHandle, chunk: string | Uint8Array): Promise<void> {
  const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done);
    // No byte taken and no error: a full disk by another name (told as one, not as a crash).
    if (bytesWritten <= 0) {
      throw Object.assign(new Error("the file system took no more bytes"), { code: "ENOSPC" });
    }
    done += bytesWritten;
  }
}

/**
 * What a failed file call means and what to do (`the disk is full [ENOSPC]; free some space…`),
 * told by its code, since the path it names is the temporary file; else its own message.
 * unverified: the raw texts this replaces are as observed (Deno's `No space left on device (os
 * error 28)`, Node's `ENOSPC: no space left on device, write`).
 */
function faultOf(error: unknown): string {
  return systemFaultMessage({ code: (error as { code?: unknown }).code }) ?? errorMessage(error);
}

/**
 * Whether two paths name the same file (device and inode, links followed): an output that is a
 * symbolic or hard link to the input would overwrite it. False when either does not exist.
 */
export async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([
    stat(a).catch(() => undefined),
    stat(b).catch(() => undefined),
  ]);
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
}
