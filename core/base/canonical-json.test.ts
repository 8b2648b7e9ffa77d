import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalJson } from "./canonical-json.ts";

/** The recipe canonical JSON was defined by (a sorted copy, then JSON.stringify): the reference. */
function reference(value: unknown): string {
  const normalise = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : normalise(x)));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[key];
        if (x !== undefined) out[key] = normalise(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(normalise(value));
}

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = [
  "a",
  "B",
  "b",
  "10",
  "9",
  "0",
  "01",
  "-1",
  "1.5",
  "ä",
  "東",
  "🚀",
  "",
  "z z",
  "4294967295",
];
const STRINGS = [
  "",
  "x",
  'q"uote',
  "back\\slash",
  "line\nbreak",
  "\u0001",
  "\ud800",
  "Zoë 東京 🚀",
];
const NUMBERS = [0, -0, 1, -1.5, 1e21, 1e-7, 2 ** 53, NaN, Infinity, -Infinity];

function value(next: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
  const kind = depth > 3 ? Math.floor(next() * 5) : Math.floor(next() * 7);
  switch (kind) {
    case 0:
      return pick(STRINGS);
    case 1:
      return pick(NUMBERS);
    case 2:
      return pick([true, false, null]);
    case 3:
      return undefined;
    case 4:
      return pick(STRINGS) + pick(KEYS);
    case 5:
      return Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let n = Math.floor(next() * 5); n > 0; n--) out[pick(KEYS)] = value(next, depth + 1);
      return out;
    }
  }
}

describe("canonicalJson", () => {
  it("writes the same text as the sorted-copy recipe, for any plain data", () => {
    const next = random(12);
    for (let i = 0; i < 3_000; i++) {
      const v = value(next, 0);
      if (v === undefined) continue;
      assert.equal(canonicalJson(v), reference(v), JSON.stringify(v));
    }
  });

  it("keeps the old order of keys that are array indices (numeric, first)", () => {
    assert.equal(
      canonicalJson({ b: 1, "10": 2, a: 3, "9": 4, "01": 5 }),
      '{"9":4,"10":2,"01":5,"a":3,"b":1}',
    );
  });

  it("writes what the old recipe wrote for values that are not plain data", () => {
    const odd = [
      { when: new Date(0), f: () => 1, s: Symbol("s"), list: [() => 1, undefined] },
      { toJSON: () => "replaced" },
      JSON.parse('{"__proto__": {"x": 1}, "y": 2}'),
      Object.assign(Object.create({ inherited: 1 }), { own: 2 }),
      new Map([["a", 1]]),
    ];
    for (const v of odd) assert.equal(canonicalJson(v), reference(v));
  });
});
