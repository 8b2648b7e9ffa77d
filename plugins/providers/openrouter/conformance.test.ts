/**
 * The provider conformance suite run against the built-in openrouter provider, batch checks
 * included (the emulator serves `POST /batches/{id}/cancel` as for an organization where OpenRouter
 * enabled cancellation).
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

describe("openrouter provider conformance", () => {
  for (const check of PROVIDER_CHECK_NAMES) {
    it(check, async (t) => {
      if (await runProviderCheck(OPTIONS, check) === "skipped") t.skip("not applicable");
    });
  }
});
