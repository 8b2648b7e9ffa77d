/**
 * Test helpers for provider plugins: one emulator per test file, with faults and the request log
 * cleared before each test, and a retry policy that does not sleep.
 * @module
 */
import { after, before, beforeEach } from "node:test";
import type { RetryPolicy } from "../../../core/run/retry.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../../emulator/mod.ts";

/** Retries as the defaults do, but with millisecond waits. */
export const FAST_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 1,
  maxDelayMs: 5,
  maxTotalWaitMs: 1_000,
};

/** Starts an emulator for the test file; `holder.emu` is set before the first test. */
export function useEmulator(options: EmulatorOptions): { emu: Emulator } {
  const holder = {} as { emu: Emulator };
  before(async () => (holder.emu = await startEmulator(options)));
  after(() => holder.emu.stop());
  beforeEach(() => {
    holder.emu.faults.clear();
    holder.emu.log.clear();
  });
  return holder;
}
