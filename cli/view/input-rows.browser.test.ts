/**
 * A job not merged yet in a real browser (`core/test-support/browser.ts`): the jobs page links its
 * input rows, shown with where each stands and a banner saying the answers come with the merge.
 * `LOOM_SCREENSHOTS=docs/view` saves the page as `input-rows.png` there (the README's picture).
 */
import assert from "node:assert/strict";
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

describe("a job not merged yet in chromium", { skip: skipBrowser }, () => {
  let fixture: ViewFixture;
  let viewer: Viewer;
  let browser: BrowserContext;
  let page: Page;
  before(async () => {
    fixture = await viewFixture();
    viewer = await viewerOn(fixture);
    ({ browser, page } = await launchChromium());
  });
  after(async () => {
    await browser?.close();
    await viewer?.stop();
  });

  it("the jobs page links its input rows: each pending in its batch, a search narrows them", async () => {
    await page.goto(viewer.url);
    await page.locator(`tr[data-job="${fixture.pending}"]`)
      .getByRole("link", { name: "not merged yet: input rows →" }).click();
    await rowsShown(page, 6);
    assert.ok(page.url().endsWith(`#/jobs/${fixture.pending}/input`), page.url());
    assert.match(
      await page.locator(".pending-banner").innerText(),
      /is not merged yet \(3 validating\): these are its input rows .* go into later\.csv/,
    );
    const rows = page.locator("table.rows tbody tr");
    assert.match(await rows.nth(0).innerText(), /1\s+pending batch 1: validating\s+1\s+alpha/);
    assert.match(await rows.nth(5).innerText(), /6\s+pending batch 3: validating\s+6\s+foxtrot/);
    await shoot(page, "input-rows");
    await page.locator('input[name="q"]').fill("boom");
    await page.getByRole("button", { name: "Search" }).click();
    await rowsShown(page, 2);
    assert.match(await page.locator(".range").innerText(), /rows 1–2 of 2 matching/);
  });
});
