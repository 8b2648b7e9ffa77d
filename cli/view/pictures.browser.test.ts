/**
 * `loom view`'s charts in a real browser (`core/test-support/browser.ts`): the Charts panel of a
 * job's rows (tokens, errors by kind, tokens per batch) and of a file with errors of several kinds
 * and a cost, where a bar of an error kind shows those rows. `LOOM_SCREENSHOTS=docs/view` saves
 * the panel as `charts.png`.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import type { Viewer } from "../commands/view.ts";
import {
  countShown,
  launchChromium,
  requireChromiumInCi,
  rowsShown,
  shoot,
  skipBrowser,
} from "../../core/test-support/browser.ts";
import { client, viewerOn, type ViewFixture, viewFixture } from "../../core/test-support/view.ts";

requireChromiumInCi();

/** 30 answered rows with tokens spread out (a cost on one in three), then failed rows of three kinds. */
const KINDS_CSV = "id,llm_response,llm_error,llm_input_tokens,llm_output_tokens,llm_cost\n" +
  Array.from(
    { length: 30 },
    (_, i) =>
      `${i + 1},answer ${i + 1},,${20 + ((i * 37) % 90)},${40 + ((i * i * 53) % 700)},${
        i % 3 === 0 ? 0.25 : ""
      }\n`,
  ).join("") +
  "31,,openai: 429 Rate limit reached for gpt-4o,,,\n" +
  "32,,the answer does not match the schema: /x must be integer,30,40,0.25\n" +
  "33,,openai: 429 Rate limit reached for gpt-4o,,,\n" +
  "34,,the batch expired before this row ran; `loom retry` submits it again,,,\n";

/** The figure of the chart titled `title`. */
const chart = (page: Page, title: string) =>
  page.locator("figure.chart", { has: page.locator("figcaption", { hasText: title }) });

describe("loom view's charts in chromium", { skip: skipBrowser }, () => {
  let fixture: ViewFixture;
  let viewer: Viewer;
  let browser: BrowserContext;
  let page: Page;
  // The URL opens the first file only when one is given: with two, it opens the jobs page.
  const at = (hash: string) => viewer.url.replace(/#.*$/, "") + hash;
  before(async () => {
    fixture = await viewFixture();
    writeFileSync(join(fixture.dir, "kinds.csv"), KINDS_CSV);
    viewer = await viewerOn(fixture, ["out.csv", "kinds.csv"]);
    ({ browser, page } = await launchChromium());
  });
  after(async () => {
    await browser?.close();
    await viewer?.stop();
  });

  it("a job's rows: the folded Charts panel opens on tokens, errors by kind and tokens per batch", async () => {
    await page.goto(at(`#/jobs/${fixture.merged}`));
    await page.locator("table.rows").waitFor();
    assert.equal(await page.locator("figure.chart").count(), 0, "folded until asked");
    await page.locator("details.charts > summary").click();
    await countShown(page, "figure.chart", 4);
    const stats = (await client(viewer).json(`/api/jobs/${fixture.merged}/stats`)).body;
    for (
      const [title, d] of [["Input tokens", stats.inputTokens], ["Output", stats.outputTokens]]
    ) {
      const figure = chart(page, title);
      assert.equal(await figure.locator("rect.chart-bar").count(), d.bins.length, title);
      assert.match(
        await figure.locator(".chart-summary").innerText(),
        new RegExp(`^4 rows: median ${d.p50}, p90 ${d.p90}, p99 ${d.p99}, max ${d.max}`),
      );
      assert.match(await figure.locator("svg").getAttribute("aria-label") ?? "", /^4 rows/);
    }
    const errors = chart(page, "Errors by kind");
    assert.deepEqual(
      await errors.locator("[data-label]").evaluateAll((bars) =>
        bars.map((b) => b.getAttribute("data-label"))
      ),
      ["other"],
    );
    assert.equal(await errors.locator(".chart-summary").innerText(), "other: 2 rows");
    const batches = chart(page, "Tokens per batch");
    assert.equal(await batches.locator("rect.chart-bar").count(), 1);
    const total = stats.inputTokens.sum + stats.outputTokens.sum;
    assert.equal(
      await batches.locator(".chart-summary").innerText(),
      `batch 1: ${total.toLocaleString("en-US")} tokens`,
    );
    assert.match(await page.locator(".chart-totals").innerText(), /6 rows · .* no cost reported/);
  });

  it("a file's errors by kind, most first, and its cost; a kind's bar shows its rows", async () => {
    await page.goto(at("#/files/1"));
    // The panel stays open (for the tab) once opened.
    await countShown(page, "figure.chart", 3);
    assert.match(
      await page.locator(".chart-totals").innerText(),
      /34 rows · .* cost \$2\.75 \(11 rows\)/,
    );
    const stats = (await client(viewer).json("/api/files/1/stats")).body;
    assert.equal(stats.outputTokens.count, 31);
    assert.equal(
      await chart(page, "Output tokens").locator("rect.chart-bar").count(),
      stats.outputTokens.bins.length,
    );
    const errors = chart(page, "Errors by kind");
    assert.deepEqual(
      await errors.locator("[data-label]").evaluateAll((bars) =>
        bars.map((b) => b.getAttribute("data-label"))
      ),
      ["rate limit", "expired", "schema"],
    );
    assert.match(await errors.locator("title").first().textContent() ?? "", /rate limit: 2 rows/);
    await shoot(page, "charts");
    await errors.locator('a[data-label="rate limit"]').click();
    await rowsShown(page, 2);
    assert.ok(page.url().includes("kind=rate+limit"), page.url());
    assert.match(await page.locator(".kind-filter").innerText(), /error is of the kind rate limit/);
    assert.match(await page.locator(".range").innerText(), /rows 1–2 of 2 matching/);
    assert.match(await page.locator("table.rows tbody").innerText(), /429 Rate limit/);
    await page.getByText("show all rows").click();
    await rowsShown(page, 34);
    assert.equal(await page.locator(".kind-filter").count(), 0);
  });
});
