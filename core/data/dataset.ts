/**
 * Opening datasets: the file is streamed from disk, gunzipped when it ends in `.gz`, and handed
 * to its format plugin. Nothing here holds more than a chunk of the file in memory.
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { errorMessage, LoomDataError, LoomUsageError } from "../base/errors.ts";
import { displayPath } from "../base/paths.ts";
import type { DatasetReader, FormatV1 } from "../spec/format.ts";

/** True when a path names a gzip-compressed file. */
export function isGzipPath(path: string): boolean {
  return path.toLowerCase().endsWith(".gz");
}

/** Sees each chunk of a file's own bytes (still compressed, for a `.gz`) as it is read. */
export type ByteTap = (chunk: Uint8Array) => void;

/**
 * Size and SHA-256 of a file's bytes, taken as a reading passes them ({@link ByteTap}): the
 * fingerprint a batch job keeps of its input, without a reading of its own.
 */
export class FileHash {
  readonly #hash = createHash("sha256");
  #size = 0;
  /** Give this to {@link readBytes} or {@link openDataset}. */
  readonly tap: ByteTap = (chunk) => {
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  };

  /** The size and hex SHA-256 of the bytes seen; call once, after the reading ended. */
  digest(): { size: number; sha256: string } {
    return { size: this.#size, sha256: this.#hash.digest("hex") };
  }
}

/**
 * Streams a file's bytes, decompressing `.gz` files. Read errors name the file. `tap` sees the
 * file's own bytes (before decompression), in order.
 */
export async function* readBytes(path: string, tap?: ByteTap): AsyncGenerator<Uint8Array> {
  const shown = displayPath(path);
  const file = createReadStream(path);
  const gzip = isGzipPath(path);
  if (tap && gzip) file.on("data", (chunk) => tap(chunk as Uint8Array));
  const stream = gzip ? file.pipe(createGunzip()) : file;
  // A failed file read does not propagate through pipe(); forward it to the gunzip stream.
  if (stream !== file) file.on("error", (error) => stream.destroy(error));
  try {
    for await (const chunk of stream) {
      if (tap && !gzip) tap(chunk as Uint8Array);
      yield chunk as Uint8Array;
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "Z_DATA_ERROR" || code === "Z_BUF_ERROR") {
      throw new LoomDataError(`${shown}: not a valid gzip file (${errorMessage(error)})`, {
        cause: error,
      });
    }
    throw new LoomDataError(`${shown}: cannot read it (${errorMessage(error)})`, { cause: error });
  } finally {
    file.destroy();
    stream.destroy();
  }
}

/**
 * Throws a clear error unless the dataset is a readable regular file. Loom reads a dataset twice
 * (once to check every row, once to run), which a pipe or a device cannot give it.
 */
export async function assertDatasetFile(file: string): Promise<void> {
  const path = displayPath(file);
  let info;
  try {
    info = await stat(file);
  } catch {
    throw new LoomUsageError(`dataset not found: ${path}`);
  }
  if (info.isDirectory()) throw new LoomUsageError(`${path}: is a directory, not a dataset file`);
  if (!info.isFile()) {
    throw new LoomUsageError(
      `${path}: is not a regular file (a pipe or a device?). Loom reads a dataset twice, once to check it and once to run it: save it to a file first`,
    );
  }
}

/** Opens a dataset with its format; `tap` sees the file's bytes as they are read. */
export function openDataset(
  path: string,
  format: FormatV1,
  options?: Readonly<Record<string, unknown>>,
  tap?: ByteTap,
): Promise<DatasetReader> {
  return format.open(readBytes(path, tap), { path: displayPath(path), options });
}
