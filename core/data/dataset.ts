/**
 * Opening datasets: the file is streamed from disk, gunzipped when it ends in `.gz`, and handed
 * to its format plugin. Nothing here holds more than a chunk of the file in memory.
 * @module
 */
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

/** Streams a file's bytes, decompressing `.gz` files. Read errors name the file. */
export async function* readBytes(path: string): AsyncGenerator<Uint8Array> {
  const shown = displayPath(path);
  const file = createReadStream(path);
  const stream = isGzipPath(path) ? file.pipe(createGunzip()) : file;
  // A failed file read does not propagate through pipe(); forward it to the gunzip stream.
  if (stream !== file) file.on("error", (error) => stream.destroy(error));
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
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

/** Opens a dataset with its format. */
export function openDataset(
  path: string,
  format: FormatV1,
  options?: Readonly<Record<string, unknown>>,
): Promise<DatasetReader> {
  return format.open(readBytes(path), { path: displayPath(path), options });
}
