/**
 * `loom view --actions` in a real browser (`core/test-support/browser.ts`): a job's Fetch opens a
 * dialog saying what it does and costs; its Cancel does nothing, its Confirm merges the job and the
 * page says so; Retry on a merged job with failed rows submits them. `LOOM_SCREENSHOTS=docs/view`
 * saves the dialog and the outcome as PNGs there (the README's pictures).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import type { Viewer } from "../commands/view.ts";
import {
  launchChromium,
  requireChromiumInCi,
  shoot,
  skipBrowser,
} from "../../core/test-support/browser.ts";
import { type ViewFixture, viewFixture } from "../../core/test-support/view.ts";
import { actionViewerOn, submitEchoJob } from "../../core/test-support/view-actions.ts";

requireChromiumInCi();

describe("loom view --actions in chromium", { skip: skipBrowser }, () => {
  let fixture: ViewFixture;
  /** Its batches have ended by the first status check: one Fetch merges it. */
  let ready: string;
  let viewer: Viewer;
  let browser: BrowserContext;
  let page: Page;
  before(async () => {
    fixture = await viewFixture();
    ready = await submitEchoJob(fixture, "ready", 0);
    viewer = await actionViewerOn(fixture);
    ({ browser, page } = await launchChromium());
  });
  after(async () => {
    await browser?.close();
    await viewer?.stop();
  });

  const jobRow = (id: string) => page.locator(`tr[data-job="${id}"]`);
  const dialog = () => page.locator("dialog.confirm");

  it("each job offers what it can: Fetch and Cancel while pending, Retry when merged with failed rows", async () => {
    await page.goto(viewer.url);
    await jobRow(ready).waitFor();
    assert.match(await page.locator("table.jobs thead").innerText(), /Actions/);
    const buttons = async (id: string) =>
      (await jobRow(id).locator("td.actions button").allInnerTexts()).join(", ");
    assert.equal(await buttons(ready), "Fetch, Cancel job");
    assert.equal(await buttons(fixture.pending), "Fetch, Cancel job");
    assert.equal(await buttons(fixture.merged), "Retry failed");
  });

  it("Fetch asks first: the dialog's Cancel leaves the job as it was", async () => {
    await jobRow(ready).getByRole("button", { name: "Fetch" }).click();
    await dialog().waitFor();
    const text = await dialog().innerText();
    assert.match(text, new RegExp(`Fetch job ${ready}\\?`));
    assert.match(text, /merges them into ready\.csv/);
    assert.match(text, /Nothing new is paid for/);
    await dialog().getByRole("button", { name: "Cancel" }).click();
    await dialog().waitFor({ state: "detached" });
    assert.match(await jobRow(ready).innerText(), /not merged yet/);
  });

  it("Fetch confirmed: the job is merged, the page says so and links its rows", async () => {
    await jobRow(ready).getByRole("button", { name: "Fetch" }).click();
    await dialog().waitFor();
    await shoot(page, "actions");
    await dialog().getByRole("button", { name: "Confirm" }).click();
    await dialog().waitFor({ state: "detached" });
    const notice = page.locator(".action-outcome");
    await notice.waitFor();
    assert.match(
      await notice.innerText(),
      new RegExp(`merged job ${ready} into ready\\.csv: 6 rows, 6 answered, 0 failed`),
    );
    const row = jobRow(ready);
    await row.getByRole("link", { name: "rows →" }).waitFor();
    assert.match(await row.innerText(), /merged\s+6\/6\s+6\s+0\s+6/);
    assert.equal(await row.locator("td.actions button").count(), 0, "nothing left to do");
    await shoot(page, "actions-done");
  });

  it("Retry says it is a new paid batch; confirmed, it submits the failed rows once", async () => {
    await jobRow(fixture.merged).getByRole("button", { name: "Retry failed" }).click();
    await dialog().waitFor();
    assert.match(await dialog().innerText(), /new paid batch: about 2 more request\(s\)/);
    await dialog().getByRole("button", { name: "Confirm" }).click();
    await dialog().waitFor({ state: "detached" });
    assert.match(
      await page.locator(".action-outcome").innerText(),
      /submitted 2 row\(s\) of job \S+ again as new batches of the same job/,
    );
    // Pending again: it offers Fetch, no second Retry.
    await jobRow(fixture.merged).getByRole("button", { name: "Fetch" }).waitFor();
    assert.equal(
      await jobRow(fixture.merged).getByRole("button", { name: "Retry failed" }).count(),
      0,
    );
  });
});
