/**
 * The provider conformance suite run against the built-in openai provider, and proven able to
 * fail: each broken wrapper below breaks one promise, and the check of that promise must reject.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomProviderError } from "../../../core/base/errors.ts";
import type { BatchApi, ProviderV1 } from "../../../core/spec/provider.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import {
  type ProviderCheckName,
  providerConformance,
  type ProviderConformanceOptions,
  runProviderCheck,
} from "../../../core/testing/provider-conformance.ts";
import openaiPlugin from "./mod.ts";

const create = ({ baseURL, apiKey }: { baseURL: string; apiKey: string }) =>
  openaiPlugin.create({ apiKey, base_url: baseURL }, { env: {}, home: tempDir() });

const OPENAI: ProviderConformanceOptions = { emulator: "openai", model: "gpt-4o-mini", create };

providerConformance(OPENAI);

/** The openai provider with some of its parts replaced. */
function broken(
  change: (p: ProviderV1, options: { apiKey: string }) => Partial<ProviderV1>,
  batch: (b: BatchApi) => Partial<BatchApi> = () => ({}),
): ProviderConformanceOptions {
  return {
    ...OPENAI,
    create: async (options) => {
      const p = await create(options);
      const batched = { ...p, batch: p.batch && { ...p.batch, ...batch(p.batch) } };
      return { ...batched, ...change(p, options) };
    },
  };
}

/** Rethrows what `generate` throws after `map` changed it. */
const mapErrors = (map: (e: LoomProviderError) => unknown) => (p: ProviderV1) => ({
  generate: (...args: Parameters<ProviderV1["generate"]>) =>
    p.generate(...args).catch((e) => Promise.reject(map(e as LoomProviderError))),
});

const BROKEN: Array<[ProviderCheckName, string, ProviderConformanceOptions]> = [
  ["declares the v1 contract", "claims batch without one", broken(() => ({ batch: undefined }))],
  [
    "answers a request with its text and token usage",
    "reports no usage",
    broken((p) => ({ generate: async (r, o) => ({ ...(await p.generate(r, o)), usage: {} }) })),
  ],
  [
    "rejects promptly when the call is aborted",
    "ignores the signal",
    broken((p) => ({ generate: (r) => p.generate(r) })),
  ],
  [
    "stops the run on a wrong key (401 is fatal), without showing the key",
    "puts the key in the message",
    broken((p, { apiKey }) => ({
      generate: (r, o) =>
        p.generate(r, o).catch((e) => {
          throw new LoomProviderError(`${e.message} (key ${apiKey})`, {
            status: e.status,
            fatal: e.fatal,
          });
        }),
    })),
  ],
  [
    "calls 429 and 5xx retryable, 400 not retryable, none fatal",
    "maps 429 to a non-retryable error",
    broken(
      mapErrors((e) => e.status === 429 ? new LoomProviderError(e.message, { status: 429 }) : e),
    ),
  ],
  [
    "calls 429 and 5xx retryable, 400 not retryable, none fatal",
    "throws plain errors",
    broken(mapErrors((e) => new Error(e.message))),
  ],
  [
    "batch: runs to its end and joins outcomes by custom id, one request failing alone",
    "drops failed outcomes",
    broken(() => ({}), (b) => ({
      resultChunks: undefined,
      async *results(h, ids, o) {
        for await (const x of b.results(h, ids, o)) if ("result" in x) yield x;
      },
    })),
  ],
  [
    "batch: cancels a running batch",
    "does not cancel",
    broken(() => ({}), () => ({ cancel: async () => {} })),
  ],
  [
    "batch: find locates a batch whose create answer was lost, and only it",
    "finds every batch",
    broken(() => ({}), (b) => ({
      find: async (l, h, o) => {
        const mine = (await b.find!(l, h, o)) ?? [];
        const theirs =
          (await b.find!({ ...l, job: "other", shard: 0, name: "loom-other-0" }, h, o)) ??
            [];
        return [...mine, ...theirs];
      },
    })),
  ],
  [
    "batch: itemBytes counts UTF-8 bytes and agrees with encodeItem",
    "counts characters",
    broken(() => ({}), (b) => ({ itemBytes: (i) => b.encodeItem!(i).length + 1 })),
  ],
  [
    "batch: resultChunks yields what results yields, in arrays",
    "drops failed outcomes from its chunks",
    broken(() => ({}), (b) => ({
      async *resultChunks(h, ids, o) {
        for await (const chunk of b.resultChunks!(h, ids, o)) {
          yield chunk.filter((x) => "result" in x);
        }
      },
    })),
  ],
  [
    "batch: resultChunks yields what results yields, in arrays",
    "yields outcomes one by one, not in arrays",
    broken(() => ({}), (b) => ({
      async *resultChunks(h, ids, o) {
        for await (const outcome of b.results(h, ids, o)) yield outcome as never;
      },
    })),
  ],
  [
    "batch: submitStream reads its items to their end before the create, and runs them",
    "announces the create before reading its items",
    broken(() => ({}), (b) => ({
      submitStream: async (source, l, o) => {
        await o?.onCreate?.();
        return b.submitStream!(source, l, { ...o, onCreate: undefined });
      },
    })),
  ],
  [
    "batch: submitStream reads its items to their end before the create, and runs them",
    "drops the last item of its stream",
    broken(() => ({}), (b) => ({
      submitStream: (source, l, o) =>
        b.submitStream!(
          {
            count: source.count - 1,
            async *items() {
              let n = 0;
              for await (const item of source.items()) if (++n < source.count) yield item;
            },
          },
          l,
          o,
        ),
    })),
  ],
  [
    "batch: submitStream sends the source's lines instead of its items, copying what it keeps",
    "reads the items although lines are given",
    broken(() => ({}), (b) => ({
      submitStream: (source, l, o) =>
        b.submitStream!({ count: source.count, items: () => source.items() }, l, o),
    })),
  ],
  [
    "batch: submitStream sends the source's lines instead of its items, copying what it keeps",
    "keeps the chunks of lines without copying them",
    broken(() => ({}), (b) => ({
      submitStream: async (source, l, o) => {
        const kept: Uint8Array[] = [];
        for await (const chunk of source.lines!()) kept.push(chunk);
        return b.submitStream!(
          {
            count: source.count,
            items: () => source.items(),
            async *lines() {
              yield* kept;
            },
          },
          l,
          o,
        );
      },
    })),
  ],
  [
    "batch: a retried submit reuses its upload, and deleteUpload deletes it (gone already is success)",
    "uploads again when given an earlier attempt's upload",
    broken(() => ({}), (b) => ({
      submit: (items, l, o) => b.submit(items, l, { ...o, upload: undefined }),
      submitStream: undefined,
    })),
  ],
  [
    "batch: a retried submit reuses its upload, and deleteUpload deletes it (gone already is success)",
    "deletes nothing",
    broken(() => ({}), () => ({ deleteUpload: async () => {} })),
  ],
  [
    "batch: a retried submit reuses its upload, and deleteUpload deletes it (gone already is success)",
    "fails to delete an upload that is gone already",
    broken(() => ({}), (b) => {
      const deleted = new Set<string>();
      return {
        deleteUpload: async (upload, o) => {
          const key = JSON.stringify(upload);
          if (deleted.has(key)) {
            throw new LoomProviderError("openai: 404 No such File object", { status: 404 });
          }
          deleted.add(key);
          await b.deleteUpload!(upload, o);
        },
      };
    }),
  ],
  [
    "batch: a retried submit reuses its upload, and deleteUpload deletes it (gone already is success)",
    "shows the key in the command that deletes an upload by hand",
    broken((p, { apiKey }) => ({
      batch: {
        ...p.batch!,
        deleteUploadCommand: (upload) =>
          `curl -X DELETE https://api.openai.com/v1/files/${upload.input_file_id} ` +
          `-H "Authorization: Bearer ${apiKey}"`,
      },
    })),
  ],
  [
    "tokens: countTokens counts what generate is billed for, without generating",
    "estimates the tokens itself",
    broken(() => ({ countTokens: async (r) => Math.ceil(JSON.stringify(r.messages).length / 4) })),
  ],
  [
    "tokens: countTokens counts what generate is billed for, without generating",
    "counts by generating",
    broken((p) => ({
      countTokens: async (r, o) => (await p.generate(r, o)).usage?.inputTokens ?? 0,
    })),
  ],
  [
    "tokens: countTokens counts what generate is billed for, without generating",
    "claims to count tokens without countTokens",
    broken(() => ({ countTokens: undefined })),
  ],
  [
    "tokens: countTokens fails as generate does (wrong key fatal, 429 and 5xx retryable, abortable)",
    "throws plain errors",
    broken((p) => ({
      countTokens: (r, o) =>
        p.countTokens!(r, o).catch((e) => Promise.reject(new Error((e as Error).message))),
    })),
  ],
  [
    "tokens: countTokens fails as generate does (wrong key fatal, 429 and 5xx retryable, abortable)",
    "ignores the signal",
    broken((p) => ({ countTokens: (r) => p.countTokens!(r) })),
  ],
];

describe("provider conformance checks fail on a broken provider", () => {
  for (const [check, flaw, options] of BROKEN) {
    it(`${check}: fails when the provider ${flaw}`, async () => {
      await assert.rejects(runProviderCheck(options, check), assert.AssertionError);
    });
  }
});
