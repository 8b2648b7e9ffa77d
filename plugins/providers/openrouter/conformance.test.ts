/**
 * The provider conformance suite run against the built-in openrouter provider, batch checks
 * included. Every check runs but the cancel check, which needs `POST /batches/{id}/cancel` in the
 * emulator: the API reference documents it (enabled per organization), the emulator does not
 * serve it yet. `batch.test.ts` checks what Loom does with the cancel answers instead.
 */
import { describe, it } from "node:test";
import { tempDir } from "../../../core/test-support/temp.ts";
import {
  PROVIDER_CHECK_NAMES,
  type ProviderConformanceOptions,
  runProviderCheck,
} from "../../../core/testing/provider-conformance.ts";
import plugin from "./mod.ts";

const OPTIONS: ProviderConformanceOptions = {
  emulator: "openrouter",
  model: "openai/gpt-4o",
  // OpenRouter's batches carry no label: find answers the batches that could be it, inexact.
  labelsBatches: false,
  create: ({ baseURL, apiKey }) =>
    plugin.create({ apiKey, base_url: baseURL }, { env: {}, home: tempDir() }),
};

/** Checks the emulator cannot serve yet, and why. */
const NOT_EMULATED: Partial<Record<(typeof PROVIDER_CHECK_NAMES)[number], string>> = {
  "batch: cancels a running batch":
    "the emulator has no POST /batches/{id}/cancel (OpenRouter enables it per organization)",
};

describe("openrouter provider conformance", () => {
  for (const check of PROVIDER_CHECK_NAMES) {
    it(check, async (t) => {
      const why = NOT_EMULATED[check];
      if (why) return t.skip(why);
      if (await runProviderCheck(OPTIONS, check) === "skipped") t.skip("not applicable");
    });
  }
});
