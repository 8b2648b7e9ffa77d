/**
 * The provider conformance suite run against the built-in google provider: as it is, and with its
 * batches uploaded as files (only batches over 19 MB are, so the batch checks run again with
 * that threshold at 0: the upload checks must pass there, not skip).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError, GoogleGenAI } from "@google/genai";
import { tempDir } from "../../../core/test-support/temp.ts";
import {
  PROVIDER_CHECK_NAMES,
  providerConformance,
  type ProviderConformanceOptions,
  runProviderCheck,
} from "../../../core/testing/provider-conformance.ts";
import { googleBatch } from "./batch.ts";
import { googleFetch } from "./fetch.ts";
import plugin from "./mod.ts";

const GOOGLE: ProviderConformanceOptions = {
  emulator: "gemini",
  model: "gemini-2.5-flash",
  create: ({ baseURL, apiKey }) =>
    plugin.create({ apiKey, base_url: baseURL }, { env: {}, home: tempDir() }),
};

providerConformance(GOOGLE);

/** The google provider with its batch API sending every batch as an uploaded file. */
const FILES: ProviderConformanceOptions = {
  ...GOOGLE,
  create: async (options) => {
    const provider = await GOOGLE.create(options);
    const ai = new GoogleGenAI({
      apiKey: options.apiKey,
      httpOptions: { baseUrl: options.baseURL, apiVersion: "v1beta", fetch: googleFetch() },
    });
    const batch = googleBatch({
      ai,
      ApiError,
      apiKey: options.apiKey,
      baseUrl: options.baseURL,
      timeoutMs: 30_000,
      inlineMaxBytes: 0,
    });
    return { ...provider, batch };
  },
};

describe("google provider conformance, batches uploaded as files", () => {
  for (const check of PROVIDER_CHECK_NAMES.filter((name) => name.startsWith("batch:"))) {
    const optional = /resultChunks|submitStream/.test(check);
    it(check, async (t) => {
      const outcome = await runProviderCheck(FILES, check);
      if (optional && outcome === "skipped") t.skip("the google batch API does not have it");
      else assert.equal(outcome, "passed");
    });
  }
});
