import assert from "node:assert/strict";
import { test } from "node:test";
import { PageSize } from "./page-size.ts";

test("pages of large values hold fewer rows, of small ones up to the most", () => {
  const size = new PageSize(200, 256 * 1024);
  assert.equal(size.rows, 200, "the first page asks for the most");
  size.after(200, 200 * 21_000); // runs of outcomes, about 21 KB each
  assert.equal(size.rows, 12);
  size.after(12, 12 * 100); // one outcome a row again
  assert.equal(size.rows, 200);
  size.after(1, 10_000_000); // one huge value: still a row a page
  assert.equal(size.rows, 1);
  size.after(0, 0); // nothing learnt from an empty page
  assert.equal(size.rows, 1);
});
