/** The provider conformance suite run against the built-in google provider. */
import { tempDir } from "../../../core/test-support/temp.ts";
import { providerConformance } from "../../../core/testing/provider-conformance.ts";
import plugin from "./mod.ts";

providerConformance({
  emulator: "gemini",
  model: "gemini-2.5-flash",
  create: ({ baseURL, apiKey }) =>
    plugin.create({ apiKey, base_url: baseURL }, { env: {}, home: tempDir() }),
});
