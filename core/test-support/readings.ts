/**
 * Counting how often a test reads its input: through the dataset's format (each opening, and the
 * bytes it pulls) and, on Linux, every byte the process read from files (`/proc/self/io`), which
 * also sees a fingerprint's reading of the raw file.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { csvFormat } from "../../plugins/formats/csv/mod.ts";
import type { FormatV1 } from "../spec/format.ts";

/** The openings of a counted format, and the (decompressed) bytes they pulled from the file. */
export interface ReadingCounts {
  opens: number;
  bytes: number;
}

/** CSV named `counted` that counts its readings in `counts` (reset them between steps). */
export function countedCsv(): { counts: ReadingCounts; format: FormatV1 } {
  const counts = { opens: 0, bytes: 0 };
  const format: FormatV1 = {
    ...csvFormat,
    name: "counted",
    open(bytes, options) {
      counts.opens++;
      async function* counted() {
        for await (const chunk of bytes) {
          counts.bytes += chunk.byteLength;
          yield chunk;
        }
      }
      return csvFormat.open(counted(), options);
    },
  };
  return { counts, format };
}

/** Bytes this process has read from files so far (Linux), or undefined elsewhere. */
export function bytesReadByProcess(): number | undefined {
  if (!existsSync("/proc/self/io")) return undefined;
  const match = /^rchar: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"));
  return match ? Number(match[1]) : undefined;
}
