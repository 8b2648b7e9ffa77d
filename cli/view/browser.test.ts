/**
 * `loom view` in a real browser (`core/test-support/browser.ts`): clicks through jobs → a job's
 * rows → a filter → a row, and checks what is on the screen. `LOOM_SCREENSHOTS=docs/view` saves
 * each page as a PNG there (the README's pictures).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import type { Viewer } from "../commands/view.ts";
import {
  launchChromium,
  requireChromiumInCi,
  rowsShown,
  shoot,
  skipBrowser,
} from "../../core/test-support/browser.ts";
import { viewerOn, type ViewFixture, viewFixture } from "../../core/test-support/view.ts";

requireChromiumInCi();

describe("loom view in chromium", { skip: skipBrowser }, () => {
  let fixture: ViewFixture;
  let viewer: Viewer;
  let browser: BrowserContext;
  let page: Page;
  before(async () => {
    fixture = await viewFixture();
    writeFileSync(
      join(fixture.dir, "structured.jsonl"),
      [
        {
          id: 1,
          llm_response: { headline: "Rain in Oslo", sentiment: "neutral" },
          llm_error: null,
        },
        { id: 2, llm_response: "{not json", llm_error: "the answer is not valid JSON" },
        { id: 3, llm_response: { headline: "Sun", sentiment: "positive", places: ["Rome"] } },
      ].map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    viewer = await viewerOn(fixture, ["out.csv", "structured.jsonl"]);
    ({ browser, page } = await launchChromium());
  });
  /** The viewer's URL showing `hash`. */
  const at = (hash: string) => viewer.url.replace(/#.*$/, "") + hash;
  after(async () => {
    await browser?.close();
    await viewer?.stop();
  });

  it("the jobs page: each job, its batches and their provider state; the token leaves the address bar", async () => {
    await page.goto(at(""));
    const merged = page.locator(`tr[data-job="${fixture.merged}"]`);
    const pending = page.locator(`tr[data-job="${fixture.pending}"]`);
    await merged.waitFor();
    assert.match(await merged.innerText(), /echo \/ echo-1\s+merged\s+6\/6\s+4\s+2\s+6/);
    assert.match(await merged.innerText(), /rows →/);
    const text = await pending.innerText();
    assert.match(text, /batch 1\s+\S+\s+submitted\s+validating\s+0\/2/);
    assert.match(text, /batch 3/);
    assert.match(text, /not merged yet/);
    assert.match(await page.locator("#live").innerText(), /refreshing every 3 s/);
    assert.match(await page.locator("ul.files").innerText(), /out\.csv csv/);
    assert.ok(!page.url().includes("token="), page.url());
    await shoot(page, "jobs");
  });

  it("a job's rows: the failed ones highlighted; the failed-only filter and a search", async () => {
    await page.locator(`tr[data-job="${fixture.merged}"] a`, { hasText: "rows →" }).click();
    await page.locator("table.rows").waitFor();
    assert.match(
      await page.locator("h1").innerText(),
      new RegExp(`job ${fixture.merged}: out\\.csv`),
    );
    assert.equal(await page.locator("table.rows tbody tr").count(), 6);
    assert.equal(await page.locator("table.rows tbody tr.error").count(), 2);
    assert.match(await page.locator(".summary").innerText(), /6 rows: 4 answered 2 failed/);
    assert.match(await page.locator("tr.error").first().innerText(), /boom bravo/);
    assert.match(await page.locator("table.rows thead").innerText(), /status\s+prompt\s+id/);
    assert.equal(await page.locator("table.rows td.prompt").first().innerText(), "alpha");
    await shoot(page, "rows");

    await page.getByLabel("failed only").check();
    await rowsShown(page, 2);
    assert.match(await page.locator(".range").innerText(), /rows 1–2 of 2 matching/);
    assert.ok(page.url().includes("failed=1"), "the filter is in the URL");
    await shoot(page, "rows-failed");

    await page.getByLabel("failed only").uncheck();
    // The page is drawn anew for the new filter: type into the new search box, not the old one.
    await rowsShown(page, 6);
    await page.locator('input[name="q"]').fill("charlie");
    await page.getByRole("button", { name: "Search" }).click();
    await rowsShown(page, 1);
    assert.match(await page.locator("table.rows tbody tr").innerText(), /charlie/);
  });

  it("a row's detail: every field in full, the error shown as such", async () => {
    await page.goto(at(`#/jobs/${fixture.merged}?failed=1`));
    await rowsShown(page, 2);
    await page.locator("table.rows tbody tr").nth(1).click();
    await page.locator("dl.row").waitFor();
    assert.match(await page.locator("h1").innerText(), /Row 5\s+error/);
    const detail = await page.locator("dl.row").innerText();
    assert.match(detail, /text\s+boom echo/);
    assert.match(detail, /llm_error\s+echo: prompt contains "boom" \(fail_on\)/);
    assert.equal(await page.locator("dd.error").count(), 1);
    const request = await page.locator("dl.request").innerText();
    assert.match(request, /model\s+echo-1\s+prompt\s+boom echo/, "the request the job sent");
    await shoot(page, "row");
    await page.getByText("← back to the rows").click();
    await page.locator("table.rows").waitFor();
  });

  it("a structured answer's fields are columns; a raw answer spans them, marked", async () => {
    await page.goto(at("#/files/1"));
    await rowsShown(page, 3);
    const head = await page.locator("table.rows thead").innerText();
    assert.match(head, /llm_response\.headline\s+llm_response\.sentiment\s+llm_response\.places/);
    assert.doesNotMatch(head, /llm_response\s/);
    const rows = page.locator("table.rows tbody tr");
    assert.match(await rows.nth(0).innerText(), /Rain in Oslo\s+neutral/);
    assert.match(await rows.nth(2).innerText(), /Sun\s+positive\s+\["Rome"\]/);
    const raw = rows.nth(1).locator("td.answer-raw");
    assert.equal(await raw.getAttribute("colspan"), "3");
    assert.equal(await raw.innerText(), "{not json");
    await shoot(page, "rows-structured");
  });

  it("a file with a corrupt line: that row shows as corrupt, the others as they are", async () => {
    writeFileSync(
      join(fixture.dir, "out.csv"),
      'id,text,llm_response,llm_error\n1,a,fine,\n2,"b"x,,\n3,c,also fine,\n',
    );
    await page.goto(at("#/files/0"));
    await page.locator("table.rows tbody tr").nth(2).waitFor();
    const corrupt = page.locator("table.rows tbody tr.corrupt");
    assert.equal(await corrupt.count(), 1);
    assert.match(await corrupt.innerText(), /corrupt line 3 cannot be read/);
    assert.match(await page.locator("table.rows tbody tr").nth(2).innerText(), /also fine/);
  });
});
