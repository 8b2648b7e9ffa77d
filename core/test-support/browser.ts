/**
 * Debian's chromium, headless, driven by playwright-core: what `loom view`'s browser tests share.
 * Under `CI=true` a missing chromium fails the tests (`.ci/run` installs it); elsewhere they are
 * skipped. `LOOM_SCREENSHOTS=docs/view` saves the pages {@link shoot} is given (the README's
 * pictures). `LOOM_CHROMIUM` names another browser binary.
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { tempDir } from "./temp.ts";

/** The browser binary the tests drive. */
export const CHROMIUM = process.env.LOOM_CHROMIUM ?? "/usr/bin/chromium";
/** Whether it is there. */
export const chromiumPresent = existsSync(CHROMIUM);
/** `describe`'s `skip` option for browser suites: false, or why they are skipped. */
export const skipBrowser: false | string = !chromiumPresent && `no ${CHROMIUM}`;

/** Chromium as the viewer's users have it, without a network or a profile of its own. */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Registers a failing test when chromium is missing under `CI=true`: there the browser tests may
 * not be skipped. Call it once at the top of a browser test file.
 */
export function requireChromiumInCi(): void {
  if (!chromiumPresent && process.env.CI === "true") {
    it("chromium is installed (CI=true: the browser tests may not be skipped)", () => {
      assert.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
    });
  }
}

/** A fresh headless chromium with a profile in a temporary folder, and its first page. */
export async function launchChromium(): Promise<{ browser: BrowserContext; page: Page }> {
  assert.ok(
    chromiumPresent,
    `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`,
  );
  const browser = await chromium.launchPersistentContext(tempDir("loom-chromium-"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 720 },
  });
  return { browser, page: browser.pages()[0] ?? (await browser.newPage()) };
}

/**
 * Waits until `selector` matches `n` elements. (Polled from here: the page's CSP forbids the
 * string evaluation `waitForFunction` would use, as it should.)
 */
export async function countShown(page: Page, selector: string, n: number): Promise<void> {
  const found = page.locator(selector);
  for (const end = Date.now() + 10_000; Date.now() < end;) {
    if ((await found.count()) === n) return;
    await page.waitForTimeout(50);
  }
  assert.fail(`${selector} matches ${await found.count()} elements, not ${n}`);
}

/** Waits until the rows table shows `n` rows. */
export function rowsShown(page: Page, n: number): Promise<void> {
  return countShown(page, "table.rows tbody tr", n);
}

/** Saves the page as `NAME.png` in `$LOOM_SCREENSHOTS`, when set. */
export async function shoot(page: Page, name: string): Promise<void> {
  const shots = process.env.LOOM_SCREENSHOTS;
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}
