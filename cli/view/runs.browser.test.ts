/**
 * `loom view`'s sync runs and costs in a real browser (`core/test-support/browser.ts`): the jobs
 * page shows a recorded sync run with its numbers and a batch job with its tokens and costs, a
 * running run's row follows its record as it is rewritten, a run's page shows its answers per
 * minute (a long run's summed in spans) and leads to its rows, and the jobs page offers the run
 * to compare with the job.
 * `LOOM_SCREENSHOTS=docs/view` saves `jobs-runs.png` and `run.png`.
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
import { type RunsFixture, runsFixture, viewerOnRuns } from "../../core/test-support/runs-view.ts";

requireChromiumInCi();

describe("loom view's sync runs and costs in chromium", { skip: skipBrowser }, () => {
  let fixture: RunsFixture;
  let viewer: Viewer;
  let browser: BrowserContext;
  let page: Page;
  before(async () => {
    fixture = await runsFixture();
    viewer = await viewerOnRuns(fixture);
    ({ browser, page } = await launchChromium());
  });
  after(async () => {
    await browser?.close();
    await viewer?.stop();
  });

  it("the jobs page: a recorded sync run with its numbers, a batch job with its tokens and costs", async () => {
    await page.goto(viewer.url.replace(/#.*$/, ""));
    const run = page.locator(`tr[data-run="${fixture.run.id}"]`);
    await run.waitFor();
    // 4 answers of 2 tokens each (echo: 4 characters a token), a dollar per 10 million tokens.
    assert.match(
      await run.innerText(),
      /priced \/ echo-1\s+finished\s+6\/6\s+4\s+2\s+8 → 8\s+\$0\.00000080\s+est\. \$0\.\d+\s+\d+s\s+rows →/,
    );
    const job = page.locator(`tr[data-job="${fixture.job}"]`);
    assert.match(await job.innerText(), /4\s+2\s+6\s+8 → 8\s+\$0\.00000080\s+est\. \$0\.\d+/);
    assert.match(
      await page.locator(`tr[data-run="${fixture.lost}"]`).innerText(),
      /lost\s+6\/6/,
    );
    const running = page.locator(`tr[data-run="${fixture.running}"]`);
    assert.match(await running.innerText(), /running\s+2\/6\s+2\s+0\s+.*written at the end/s);
    assert.match(await page.locator("#live").innerText(), /refreshing every 3 s/);
    await shoot(page, "jobs-runs");
  });

  it("a running run's row follows its record while the page is open", async () => {
    await fixture.advance(5);
    const running = page.locator(`tr[data-run="${fixture.running}"]`);
    for (const end = Date.now() + 10_000; Date.now() < end;) {
      if (/5\/6/.test(await running.innerText())) break;
      await page.waitForTimeout(200);
    }
    assert.match(await running.innerText(), /running\s+5\/6\s+5\s+0/);
  });

  it("a run's page: its figures and answers per minute, and a link to its rows", async () => {
    await page.locator(`tr[data-run="${fixture.run.id}"] a`, { hasText: fixture.run.id }).click();
    await page.locator("figure.chart").waitFor();
    assert.match(
      await page.locator("h1").innerText(),
      new RegExp(`Run ${fixture.run.id}\\s+finished`),
    );
    const figures = await page.locator("dl.row").innerText();
    assert.match(figures, /answered\s+4 \(0 from the cache\)/);
    assert.match(figures, /tokens in → out\s+8 → 8/);
    assert.match(figures, /cost reported\s+\$0\.00000080/);
    assert.match(figures, /cost estimated\s+\$0\.\d+ \(price: job\)/);
    const chart = page.locator("figure.chart");
    assert.equal(await chart.locator("figcaption").innerText(), "Answers per minute");
    assert.equal(await chart.locator(".chart-bar").count(), 1, "one column: the run took a minute");
    assert.equal(await chart.locator(".chart-summary").innerText(), "minute 1: 4 answers");
    await shoot(page, "run");
    await page.getByText("its rows →").click();
    await rowsShown(page, 6);
    assert.match(
      await page.locator("h1").innerText(),
      new RegExp(`run ${fixture.run.id}: sync\\.csv`),
    );
    assert.equal(await page.locator("table.rows tbody tr.error").count(), 2);
  });

  it("a long run's page sums its minutes in spans: at most 120 columns, each saying its minutes", async () => {
    // 241 minutes: spans of 3, the last of one minute alone.
    const perMinute = Array.from({ length: 241 }, (_, i) => 10 + (i % 4));
    const id = "run-20261130-a10e9a";
    await fixture.put({ ...fixture.run, id, perMinute });
    await page.goto(`${viewer.url.replace(/#.*$/, "")}#/runs/${id}/about`);
    const chart = page.locator("figure.chart");
    await chart.waitFor();
    assert.equal(await chart.locator("figcaption").innerText(), "Answers per 3 minutes");
    assert.equal(await chart.locator(".chart-bar").count(), 81);
    assert.match(
      await chart.locator(".chart-summary").innerText(),
      /^minutes 1–3: 33 answers; minutes 4–6: 34 answers; .*; and 69 more$/,
    );
    assert.equal(
      await chart.locator("title").last().textContent(),
      `minute 241: ${perMinute[240]} answers`,
    );
  });

  it("the jobs page offers a run to compare: the sync run against the batch job of the same rows", async () => {
    await page.goto(viewer.url.replace(/#.*$/, ""));
    const a = page.getByLabel("compare A");
    await a.waitFor();
    const offered = await a.locator("option").allInnerTexts();
    assert.ok(offered.includes(`run ${fixture.run.id} (echo-1)`), offered.join(", "));
    assert.ok(!offered.some((o) => o.includes(fixture.running)), "a running run has no output");
    await a.selectOption(`runs/${fixture.run.id}`);
    await page.getByLabel("compare B").selectOption(`jobs/${fixture.job}`);
    await page.getByRole("button", { name: "Compare" }).click();
    await page.locator("table.compare tbody tr").nth(5).waitFor();
    assert.match(
      await page.locator(".sides").innerText(),
      new RegExp(`A: run ${fixture.run.id}: sync\\.csv \\(6 rows\\)\\s+B: job ${fixture.job}`),
    );
    assert.match(
      await page.locator(".summary").innerText(),
      /6 rows compared: 4 identical 0 differ failed in A only 0 in B only 0 in both 2/,
    );
  });
});
