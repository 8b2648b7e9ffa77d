import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { FileHash, readBytes } from "./dataset.ts";

/** A file of `size` varied bytes: several stream chunks, so the tap sees more than one. */
function sample(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >>> 9)) & 0xff;
  return bytes;
}

const dir = mkdtempSync(join(tmpdir(), "loom-dataset-"));

for (const gzip of [false, true]) {
  test(`FileHash taps the file's own bytes while it is read (${gzip ? ".gz" : "plain"})`, async () => {
    const data = sample(300_000);
    const path = join(dir, gzip ? "data.csv.gz" : "data.csv");
    writeFileSync(path, gzip ? gzipSync(data) : data);
    const hash = new FileHash();
    let read = 0;
    for await (const chunk of readBytes(path, hash.tap)) read += chunk.byteLength;
    // The reader yields the dataset (decompressed); the hash is of the file as it lies on disk.
    assert.equal(read, data.byteLength);
    const file = readFileSync(path);
    assert.deepEqual(hash.digest(), {
      size: file.byteLength,
      sha256: createHash("sha256").update(file).digest("hex"),
    });
  });
}
