/** The provider conformance suite run against the built-in anthropic provider. */
import { tempDir } from "../../../core/test-support/temp.ts";
import { providerConformance } from "../../../core/testing/provider-conformance.ts";
import plugin from "./mod.ts";

providerConformance({
  emulator: "anthropic",
  model: "claude-sonnet-4-5",
  // Anthropic's batches carry no label: find answers the batches that could be it, inexact.
  labelsBatches: false,
  create: ({ baseURL, apiKey }) =>
    plugin.create({ apiKey, base_url: baseURL }, { env: {}, home: tempDir() }),
});
