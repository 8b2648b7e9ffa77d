import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomUsageError } from "../base/errors.ts";
import { parseDuration } from "./duration.ts";

describe("parseDuration", () => {
  it("reads a whole number and one unit into milliseconds", () => {
    assert.equal(parseDuration("45s"), 45_000);
    assert.equal(parseDuration("90m"), 90 * 60_000);
    assert.equal(parseDuration("12h"), 12 * 3_600_000);
    assert.equal(parseDuration("30d"), 30 * 86_400_000);
    assert.equal(parseDuration("2w"), 14 * 86_400_000);
    assert.equal(parseDuration(" 1d "), 86_400_000, "spaces around it are ignored");
  });

  it("refuses anything else with a usage error that gives examples", () => {
    for (
      const bad of ["", "30", "d", "1.5h", "-1d", "30 d", "30D", "30days", "1y", "1d2h", "0d", "0s"]
    ) {
      assert.throws(
        () => parseDuration(bad),
        (error: unknown) =>
          error instanceof LoomUsageError && error.exitCode === 2 &&
          error.message.includes(JSON.stringify(bad)) &&
          /30d, 12h, 90m, 45s or 2w/.test(error.message),
        bad,
      );
    }
  });

  it("refuses a number too large to count in milliseconds", () => {
    assert.throws(() => parseDuration("99999999999999w"), /too long/);
    assert.throws(() => parseDuration(`${"9".repeat(400)}s`), /too long/);
  });
});
