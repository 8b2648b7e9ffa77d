/**
 * `loom view`'s compare in a real browser (`core/test-support/browser.ts`): from the jobs page to
 * two outputs side by side, the "answers differ" and failure filters, one row of both, and a
 * dataset that is not the same. `LOOM_SCREENSHOTS=docs/view` saves the pages as PNGs there.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startViewer, type Viewer } from "../commands/view.ts";
import {
  countShown,
  launchChromium,
  requireChromiumInCi,
  rowsShown,
  shoot,
  skipBrowser,
} from "../../core/test-support/browser.ts";
import { type CompareFixture, compareFixture } from "../../core/test-support/compare.ts";

requireChromiumInCi();

describe("loom view compare in chromium", { skip: skipBrowser }, () => {
  let fixture: CompareFixture;
  let viewer: Viewer;
  let browser: BrowserContext;
  let page: Page;
  const home = () => viewer.url.replace(/#.*$/, "");
  before(async () => {
    fixture = await compareFixture();
    // Not the same dataset as a.csv: six rows, the third one's text changed.
    writeFileSync(
      join(fixture.dir, "other.csv"),
      "id,text,hint,llm_response,llm_error\n1,alpha,,alpha,\n2,boom bravo,,x,\n" +
        "3,charly,,charly,\n4,delta,,delta,\n5,echo bang,,y,\n6,boom bang,,z,\n",
    );
    viewer = await startViewer({
      targets: ["a.csv", "b.csv", "other.csv"],
      env: fixture.env,
      cwd: fixture.dir,
    });
    ({ browser, page } = await launchChromium());
  });
  after(async () => {
    await browser?.close();
    await viewer?.stop();
  });

  it("the jobs page offers to compare the outputs; Compare shows them side by side", async () => {
    await page.goto(home());
    const a = page.getByLabel("compare A");
    await a.waitFor();
    assert.deepEqual(
      await a.locator("option").allInnerTexts(),
      ["a.csv", "b.csv", "other.csv", `job ${fixture.job}`, `run ${fixture.run} (echo-1)`],
    );
    assert.equal(await a.inputValue(), "files/0");
    assert.equal(await page.getByLabel("compare B").inputValue(), "files/1");
    await page.getByRole("button", { name: "Compare" }).click();
    await rowsShown(page, 8);
    assert.ok(page.url().includes("#/compare/files/0/files/1"), page.url());
    assert.match(await page.locator(".sides").innerText(), /A: a\.csv \(8 rows\)\s+B: b\.csv/);
    assert.match(
      await page.locator(".summary").innerText(),
      /8 rows compared: 3 identical 4 differ failed in A only 1 in B only 1 in both 1/,
    );
    assert.equal(await page.locator(".mismatch").count(), 0);
    assert.equal(await page.locator("table.compare tbody tr.differ").count(), 4);
    const foxtrot = page.locator('tr[data-row="6"]');
    assert.equal(await foxtrot.locator("td.answer.a").innerText(), "foxtrot");
    assert.equal(await foxtrot.locator("td.answer.b").innerText(), "foxtrot and more words");
    assert.equal((await foxtrot.locator("td.answer.b ins").innerText()).trim(), "and more words");
    const bravo = page.locator('tr[data-row="1"]');
    assert.match(await bravo.locator("td.failure").first().innerText(), /prompt contains "boom"/);
    assert.match(await bravo.locator("td.answer.b").innerText(), /boom bravo/);
    await shoot(page, "compare");
  });

  it("the filters: answers that differ, then failed in A only", async () => {
    await page.getByLabel("answers differ").check();
    await rowsShown(page, 4);
    assert.ok(page.url().includes("differ=1"), "the filter is in the URL");
    assert.match(await page.locator(".range").innerText(), /rows 1–4 of 4 matching/);
    const shown = page.locator("table.compare tbody tr");
    const numbers = [];
    for (let i = 0; i < 4; i++) numbers.push(await shown.nth(i).getAttribute("data-row"));
    assert.deepEqual(numbers, ["1", "2", "4", "6"]);
    await page.getByLabel("failed", { exact: true }).selectOption("a");
    await rowsShown(page, 1);
    assert.match(await page.locator("table.compare tbody tr").innerText(), /boom bravo/);
  });

  it("one row of both: each side's answer, error and usage, the words B added marked", async () => {
    await page.locator("table.compare tbody tr").first().click();
    await page.locator(".sides-by-side").waitFor();
    assert.match(await page.locator("h1").innerText(), /Row 2\s+answers differ/);
    assert.match(await page.locator(".side-a").innerText(), /A: a\.csv\s+error/);
    assert.match(await page.locator(".side-a .failure").innerText(), /prompt contains "boom"/);
    assert.match(await page.locator(".side-b pre.answer").innerText(), /^boom bravo$/);
    assert.match(await page.locator(".side-b .usage").innerText(), /finish reason: stop/);
    await page.goto(home() + "#/compare/files/0/files/1/rows/6");
    await countShown(page, ".side-b pre.answer ins", 1);
    assert.equal((await page.locator(".side-b ins").innerText()).trim(), "and more words");
    assert.match(await page.locator("dl.row").innerText(), /text\s+foxtrot/);
    await shoot(page, "compare-row");
    await page.getByText("← back to the comparison").click();
    await rowsShown(page, 8);
  });

  it("not the same dataset: the page says so and still shows what it can", async () => {
    await page.goto(home() + "#/compare/files/0/files/2");
    await countShown(page, ".mismatch", 2);
    const notes = await page.locator(".mismatch").allInnerTexts();
    assert.equal(notes.length, 2, notes.join("\n"));
    assert.match(notes[0], /Not the same dataset: B has 2 rows fewer than A \(rows 7–8/);
    assert.match(notes[1], /Not the same dataset: row 3's input differs\./);
    assert.match(await page.locator('tr[data-row="2"]').innerText(), /input ≠/);
    assert.match(await page.locator('tr[data-row="7"] td.answer.b').innerText(), /no such row/);
    await page.locator('tr[data-row="2"]').click();
    await page.locator(".side-b dl.row").waitFor();
    assert.match(await page.locator("h1").innerText(), /Row 3\s+answers differ\s+input differs/);
    assert.match(await page.locator(".side-a dl.row").innerText(), /text\s+charlie/);
    assert.match(await page.locator(".side-b dl.row").innerText(), /text\s+charly/);
  });
});
