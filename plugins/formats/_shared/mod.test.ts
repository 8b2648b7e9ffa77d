import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkOptions, where } from "./errors.ts";
import fc from "fast-check";
import { hasLongDigitRun, parseObject, setMembers } from "./json.ts";
import { countLineBreaks, splitLines } from "./lines.ts";
import { batchText, prefetch } from "./stream.ts";
import { decodeUtf8 } from "./utf8.ts";

async function* chunksOf<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function splitBytes(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size));
  return out;
}

describe("decodeUtf8", () => {
  it("decodes characters split across chunks and reports a byte-order mark", async () => {
    const text = "\ufeffZoë — 東京 🚀\nline two";
    for (const size of [1, 2, 3, 5]) {
      const seen = { bom: false };
      const out = await collect(
        decodeUtf8(chunksOf(splitBytes(new TextEncoder().encode(text), size)), "f", seen),
      );
      assert.equal(out.join(""), text.slice(1));
      assert.ok(seen.bom);
    }
    const seen = { bom: false };
    assert.equal(
      (await collect(decodeUtf8(chunksOf([new TextEncoder().encode("a\ufeff")]), "f", seen))).join(
        "",
      ),
      "a\ufeff",
    );
    assert.ok(!seen.bom, "only a leading mark is a byte-order mark");
  });

  it("refuses invalid UTF-8, naming the line", async () => {
    const ok = (s: string) => [...new TextEncoder().encode(s)];
    const cases: [number[], number][] = [
      [[...ok("a\nb\nc"), 0xe9, ...ok("\n")], 3], // Latin-1 é
      [[...ok("a\n"), 0xc0, 0x80], 2], // overlong
      [[...ok("a\n\n"), 0xed, 0xa0, 0x80], 3], // surrogate
      [[...ok("a\nb"), 0xe6, 0x9d], 2], // truncated at the end
      [[...ok("é\nx\n"), 0x80, ...ok("\n")], 3], // stray continuation byte
    ];
    for (const [bytes, line] of cases) {
      for (const size of [1, 2, 1024]) {
        await assert.rejects(
          collect(decodeUtf8(chunksOf(splitBytes(new Uint8Array(bytes), size)), "f.csv")),
          {
            name: "LoomDataError",
            message: new RegExp(`^f\\.csv:${line}: the file is not valid UTF-8`),
          },
        );
      }
    }
  });
});

describe("lines", () => {
  it("counts CRLF, LF and lone CR once each", () => {
    assert.equal(countLineBreaks("a\r\nb\rc\nd"), 3);
    assert.equal(countLineBreaks("\r\r\n\n"), 3);
    assert.equal(countLineBreaks("none"), 0);
  });

  it("splits lines across chunks, keeping each line's ending", async () => {
    const never = (): never => {
      throw new Error("too long");
    };
    const lines = await collect(splitLines(chunksOf(["a\r", "\nb", "c\n\n", "d"]), never));
    assert.deepEqual(lines, [
      { text: "a", line: 1, eol: "\r\n" },
      { text: "bc", line: 2, eol: "\n" },
      { text: "", line: 3, eol: "\n" },
      { text: "d", line: 4, eol: "" },
    ]);
  });
});

describe("hasLongDigitRun", () => {
  it("tells what /\\d{16}/ tells", () => {
    // Digit runs of every length around 16, between non-digits (an Arabic-Indic digit is not \d).
    const run = fc.tuple(fc.integer({ min: 0, max: 20 }), fc.constantFrom("a", ".", "٣", '"'));
    const text = fc.array(run, { maxLength: 8 }).map((runs) =>
      runs.map(([length, sep]) => "1234567890".repeat(2).slice(0, length) + sep).join("")
    );
    fc.assert(
      fc.property(text, (s) => assert.equal(hasLongDigitRun(s), /\d{16}/.test(s), s)),
      { numRuns: 3000 },
    );
    assert.ok(hasLongDigitRun('{"id": 12345678901234567890}'));
    assert.ok(!hasLongDigitRun('{"id": 123456789012345, "n": 1234567890123456.5e3}'.slice(0, 25)));
  });
});

describe("parseObject", () => {
  // V8's JSON.parse (Deno 2.9.6) misnames a key spelled with an escape once a key of one
  // backslash was seen in the same place (nodejs/node#63785); Loom's rows keep their own names.
  it("names every column as the row writes it, whatever rows came before", () => {
    const rows = [
      '{"id":1,"\\\\":"a backslash"}',
      '{"id":2,"\\n":"a newline"}',
      '{"id":3,"\\t":"a tab","\\\\":"both"}',
      '{"id":4,"ab\\\\":1}',
      '{"id":5,"ab\\n":2,"ab\\n":3}',
      '{"id":6,"\\/":"a slash","big":12345678901234567890}',
      '{"id":7,"abc":"plain"}',
      '{"id":8,"a\\u0062":"b as an escape","text":"a \\"quoted\\" value"}',
    ];
    const keys = rows.map((row) => Object.keys(parseObject(row, "in.jsonl", 1)));
    assert.deepEqual(keys, [
      ["id", "\\"],
      ["id", "\n"],
      ["id", "\t", "\\"],
      ["id", "ab\\"],
      ["id", "ab\n"],
      ["id", "/", "big"],
      ["id", "abc"],
      ["id", "ab", "text"],
    ]);
    const last = parseObject(rows[4], "in.jsonl", 1);
    assert.equal(last["ab\n"], 3);
    assert.equal(parseObject(rows[5], "in.jsonl", 1).big, "12345678901234567890");
  });
});

describe("setMembers", () => {
  const set = (text: string, values: Record<string, string | number | boolean | null>) =>
    setMembers(text, Object.entries(values));

  it("appends members before the closing brace", () => {
    assert.equal(set('{"a":1}', { r: "x" }), '{"a":1,"r":"x"}');
    assert.equal(set('{"a": 1} ', { r: null, s: 2 }), '{"a": 1,"r":null,"s":2} ');
    assert.equal(set("{}", { r: true }), '{"r":true}');
    assert.equal(set('{"a":1}', {}), '{"a":1}');
  });

  it("follows a one-member-per-line layout", () => {
    assert.equal(
      set('{\n\t"a": 1\n}', { r: "x", s: "y" }),
      '{\n\t"a": 1,\n\t"r": "x",\n\t"s": "y"\n}',
    );
  });

  it("replaces a member that is already there, in place", () => {
    assert.equal(set('{"r": [1, {"}": "{"}], "a": "r"}', { r: "new" }), '{"r": "new", "a": "r"}');
    assert.equal(set('{"a": "\\"r\\"", "r": 0}', { r: 1, s: 2 }), '{"a": "\\"r\\"", "r": 1,"s":2}');
    assert.equal(set('{"\\u0072": true}', { r: false }), '{"\\u0072": false}');
  });
});

describe("stream helpers", () => {
  it("batches pieces into chunks of about the given size", async () => {
    const pieces = Array.from({ length: 100 }, (_, i) => `piece ${i};`);
    const chunks = await collect(batchText(chunksOf(pieces), 100));
    assert.equal(chunks.join(""), pieces.join(""));
    assert.ok(chunks.length > 5 && chunks.length < 20);
    // Never over the size (going over cost Node twice the time with two-byte text).
    assert.ok(chunks.every((chunk) => chunk.length <= 100), chunks.map((c) => c.length).join());
    assert.deepEqual(await collect(batchText(chunksOf(["a".repeat(150), "b"]), 100)), [
      "a".repeat(150),
      "b",
    ]);
    assert.deepEqual(await collect(batchText(chunksOf([]))), []);
  });

  it("prefetches the first item, surfacing its error, and closes the source on early exit", async () => {
    let closed = false;
    async function* items() {
      try {
        yield* [1, 2, 3];
      } finally {
        closed = true;
      }
    }
    const all = await prefetch(items());
    for await (const item of all) {
      assert.equal(item, 1);
      break;
    }
    assert.ok(closed);
    async function* failing(): AsyncGenerator<number> {
      yield await Promise.reject(new Error("bad head"));
    }
    await assert.rejects(prefetch(failing()), /bad head/);
  });
});

describe("errors", () => {
  it("formats places and rejects unknown options", () => {
    assert.equal(where("f", 3, 4), "f:3:4");
    assert.equal(where("f", 3), "f:3");
    assert.equal(where("f"), "f");
    assert.deepEqual(checkOptions("f", "csv", { quote: "'" }, ["quote"]), { quote: "'" });
    assert.throws(() => checkOptions("f", "csv", { qoute: "'" }, ["quote"]), {
      name: "LoomUsageError",
      message: 'f: unknown csv option "qoute" in dataset.options (known options: quote)',
    });
  });
});
