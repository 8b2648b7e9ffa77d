/**
 * Uploads left behind: a finished batch's uploaded input file is deleted once its results are
 * saved; when the delete fails, the warning names the file and how to delete it, the job's record
 * is kept (it remembers the file), and a later `loom fetch` or `loom forget` deletes it; a delete
 * that keeps failing stops a plain `forget`, and `forget --force` forgets the job, naming what is
 * left. Through the real CLI, OpenAI's and Gemini's SDKs against the emulator, DELETE requests
 * counted in the emulator's log.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { type CliResult, runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import {
  KEY_ENV,
  startBatchEmulator,
  writeBatchJob,
} from "../core/test-support/batch-providers.ts";
import type { Emulator } from "../emulator/mod.ts";

type Provider = "openai" | "google";
const DELETE = { openai: /^DELETE \/v1\/files\//, google: /^DELETE \/v1beta\/files\// } as const;
const UPLOAD = { openai: /^POST \/v1\/files$/, google: /^POST \/upload\/v1beta\/files$/ } as const;
/** Gemini sends a batch under about 19 MB inline: only a bigger one is uploaded as a file. */
const GEMINI_FILE_PROMPT = "lorem ".repeat(200_000);

interface Setup {
  readonly emu: Emulator;
  readonly prompts: readonly string[];
  run(args: string[]): Promise<CliResult>;
  deletes(): number;
  /** Submits the job; returns its id. */
  submit(): Promise<string>;
  /** Ids of the jobs `loom list` shows. */
  listed(): Promise<string[]>;
  assertOutput(): void;
}

async function withSetup(provider: Provider, work: (s: Setup) => Promise<void>): Promise<void> {
  const dir = tempDir("loom-uploads-");
  const emu = await startBatchEmulator(provider);
  try {
    const prompts = provider === "google"
      ? Array.from({ length: 17 }, (_, i) => `${i} ${GEMINI_FILE_PROMPT}`)
      : ["name a colour", "count to three"];
    writeBatchJob(dir, { provider, baseURL: emu.baseURL, prompts });
    const env = { LOOM_HOME: join(dir, "home"), [KEY_ENV[provider]]: emu.apiKey };
    const run = (args: string[]) => runCli(args, { cwd: dir, env });
    await work({
      emu,
      prompts,
      run,
      deletes: () => emu.log.count(DELETE[provider]),
      async submit() {
        const submitted = await run(["run", "job.yaml"]);
        assert.equal(submitted.code, 0, submitted.stderr);
        assert.equal(emu.log.count(UPLOAD[provider]) > 0, true, "the input was uploaded");
        return /submitted job (\S+):/.exec(submitted.stdout)![1];
      },
      async listed() {
        const list = await run(["list", "--json"]);
        assert.equal(list.code, 0, list.stderr);
        return list.stdout.split("\n").filter(Boolean).map((l) =>
          (JSON.parse(l) as { id: string }).id
        );
      },
      assertOutput() {
        const rows = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
          string,
          string
        >[];
        assert.equal(rows.length, prompts.length);
        for (const row of rows) assert.equal(row.llm_error, "", row.llm_error.slice(0, 200));
      },
    });
  } finally {
    await emu.stop();
  }
}

/** The uploaded file's id as the provider names it, from the emulator's log. */
function uploadedId(s: Setup, provider: Provider): string {
  const entry = s.emu.log.entries.find((e) => DELETE[provider].test(`${e.method} ${e.path}`));
  assert.ok(entry, "a delete was asked");
  return entry.path.replace(/^.*\/files\//, "");
}

function failDeletes(s: Setup, provider: Provider, first?: number): void {
  s.emu.faults.add({
    name: "no-delete",
    match: {
      method: "DELETE",
      path: provider === "google" ? "/v1beta/files/" : "/v1/files/",
      ...(first ? { first } : {}),
    },
    action: { kind: "status", status: 400, message: "cannot delete now" },
  });
}

describe("uploads left behind", () => {
  it("openai: a failed delete is named with the way to delete it; the job is kept, and the next loom fetch deletes it", async () => {
    await withSetup("openai", async (s) => {
      const id = await s.submit();
      failDeletes(s, "openai", 1);
      const fetched = await s.run(["fetch", "--id", id]);
      assert.equal(fetched.code, 0, fetched.stderr);
      s.assertOutput();
      assert.equal(s.deletes(), 1);
      const file = uploadedId(s, "openai");
      assert.match(fetched.stderr, new RegExp(`${file}.*could not be deleted.*cannot delete now`));
      assert.ok(fetched.stderr.includes(`loom forget ${id}`), fetched.stderr);
      assert.ok(
        fetched.stderr.includes(
          `curl -X DELETE ${s.emu.baseURL}/files/${file} -H "Authorization: Bearer $OPENAI_API_KEY"`,
        ),
        fetched.stderr,
      );
      assert.ok(!fetched.stderr.includes(s.emu.apiKey), "never the key");
      assert.match(fetched.stdout, /record is kept until its uploaded input file is deleted/);
      assert.deepEqual(await s.listed(), [id], "the job remembers the file");

      const next = await s.run(["fetch"]);
      assert.equal(next.code, 0, next.stderr);
      assert.equal(s.deletes(), 2, "the next fetch deleted it");
      assert.deepEqual(await s.listed(), [], "and then removed the job");
      assert.equal((await s.run(["fetch"])).code, 0);
      assert.equal(s.deletes(), 2, "nothing left to delete");
    });
  });

  it("openai: loom forget tries again; a delete that keeps failing needs --force, which names the file left", async () => {
    await withSetup("openai", async (s) => {
      const id = await s.submit();
      failDeletes(s, "openai");
      assert.equal((await s.run(["fetch", "--id", id])).code, 0);
      const file = uploadedId(s, "openai");
      const forget = await s.run(["forget", id]);
      assert.equal(forget.code, 2, forget.stderr);
      assert.equal(s.deletes(), 2, "forget tried the delete again");
      assert.match(forget.stderr, new RegExp(`^loom: .*${file}.*--force`, "m"));
      assert.deepEqual(await s.listed(), [id], "a plain forget keeps the job");

      const forced = await s.run(["forget", id, "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(s.deletes(), 3);
      assert.deepEqual(await s.listed(), []);
      assert.ok(forced.stderr.includes(file), forced.stderr);
      assert.ok(forced.stderr.includes(`curl -X DELETE ${s.emu.baseURL}/files/${file}`));
    });
  });

  it("google: a finished batch's uploaded file is deleted by the fetch", async () => {
    await withSetup("google", async (s) => {
      const id = await s.submit();
      assert.ok(s.emu.log.count(UPLOAD.google) >= 1, "the batch went as a file");
      const fetched = await s.run(["fetch", "--id", id]);
      assert.equal(fetched.code, 0, fetched.stderr);
      s.assertOutput();
      assert.equal(s.deletes(), 1);
      assert.doesNotMatch(fetched.stderr, /could not be deleted/);
      assert.deepEqual(await s.listed(), []);
    });
  });

  it("google: a failed delete is named; loom forget deletes it and forgets the job", async () => {
    await withSetup("google", async (s) => {
      const id = await s.submit();
      failDeletes(s, "google", 1);
      const fetched = await s.run(["fetch", "--id", id]);
      assert.equal(fetched.code, 0, fetched.stderr);
      s.assertOutput();
      const file = uploadedId(s, "google");
      assert.match(fetched.stderr, new RegExp(`files/${file}.*could not be deleted`));
      assert.ok(
        fetched.stderr.includes(
          `curl -X DELETE "${s.emu.baseURL}/v1beta/files/${file}" -H "x-goog-api-key: $GEMINI_API_KEY"`,
        ),
        fetched.stderr,
      );
      assert.deepEqual(await s.listed(), [id]);
      const forget = await s.run(["forget", id]);
      assert.equal(forget.code, 0, forget.stderr);
      assert.equal(s.deletes(), 2);
      assert.deepEqual(await s.listed(), []);
    });
  });
});
