import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { VERSION } from "./version.ts";
import { repoRoot } from "../test-support/paths.ts";

it("VERSION matches package.json and deno.json", () => {
  for (const manifest of ["package.json", "deno.json"]) {
    const { version } = JSON.parse(readFileSync(`${repoRoot()}/${manifest}`, "utf8"));
    assert.equal(version, VERSION, manifest);
  }
});
