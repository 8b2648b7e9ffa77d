/** The provider conformance suite run against the built-in openrouter provider. */
import { tempDir } from "../../../core/test-support/temp.ts";
import { providerConformance } from "../../../core/testing/provider-conformance.ts";
import plugin from "./mod.ts";

providerConformance({
  emulator: "openrouter",
  model: "openai/gpt-4o",
  create: ({ baseURL, apiKey }) =>
    plugin.create({ apiKey, base_url: baseURL }, { env: {}, home: tempDir() }),
});
