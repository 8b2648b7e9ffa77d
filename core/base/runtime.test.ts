import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import { runtimeLabel, runtimeName, writeUtf8 } from "./runtime.ts";

describe("runtime", () => {
  it("names the runtime it runs on", () => {
    const name = runtimeName();
    assert.equal(name, "Deno" in globalThis ? "deno" : "node");
    assert.match(runtimeLabel(), name === "deno" ? /^Deno \d+\.\d+/ : /^Node \d+\.\d+/);
  });

  it("writeUtf8 writes the bytes Buffer.from gives, at the offset asked, and nothing past them", () => {
    const texts = [
      "",
      "plain",
      "Zoë visited 東京",
      "an emoji 🧵 and a lone \ud800 surrogate",
      '\r\n\t"{}',
    ];
    // A pooled buffer (non-zero byteOffset) as well as one of its own.
    for (const into of [Buffer.allocUnsafe(256), Buffer.alloc(300).subarray(20, 276)]) {
      for (const text of texts) {
        into.fill(0xaa);
        const at = 7;
        const written = writeUtf8(into, text, at);
        const expected = Buffer.from(text, "utf8");
        assert.equal(written, expected.length, text);
        assert.deepEqual(into.subarray(at, at + written), expected, text);
        assert.equal(into[at - 1], 0xaa);
        assert.equal(into[at + written], 0xaa);
      }
    }
  });
});
