/**
 * A provider's say before any work: problems placed anywhere in the job (the answer schema, not
 * only `params`), and notes on how the job will be sent, shown once per run and listed by a plan.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { planJobCost } from "../commands/estimate.ts";
import { LoomJobError } from "../base/errors.ts";
import type { RunEvent } from "../base/events.ts";
import { loadJob } from "../job/load.ts";
import { Registry } from "../plugins/registry.ts";
import type { ParamsContext } from "../spec/provider.ts";
import { tempDir } from "../test-support/temp.ts";
import { runJob } from "../commands/run.ts";

/** A provider that notes the model it is given and refuses schemas with a `not`. */
function notingRegistry(seen: ParamsContext[]): Registry {
  const registry = new Registry();
  registry.register({
    apiVersion: 1,
    kind: "provider",
    name: "noting",
    create: () => ({
      specificationVersion: "loom.provider.v1",
      name: "noting",
      capabilities: { sync: true, batch: false, tokens: false },
      validateParams: (_params, context) => {
        seen.push(context);
        const props = (context.schema?.properties ?? {}) as Record<string, Record<string, unknown>>;
        return Object.keys(props).filter((k) => props[k].not !== undefined)
          .map((k) => ({
            param: "schema",
            path: ["schema", "properties", k],
            message: "noting cannot send not",
          }));
      },
      jobNotes: (_params, context) => [`${context.model} is deprecated`],
      generate: async (request) => ({ text: `{"a":"${request.messages[0].content}"}` }),
    }),
  });
  return registry;
}

function setup(schema: string) {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), "prompt\nx\ny\nz\n");
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprovider: noting\nmodel: old-1\nmode: sync\noutput: { path: out.csv }\nschema:\n${schema}`,
  );
  return {
    dir,
    env: { LOOM_HOME: join(dir, "home") },
    load: () => loadJob({ file: join(dir, "job.yaml"), cwd: dir }),
  };
}

const GOOD = "  type: object\n  properties:\n    a: { type: string }\n";

describe("provider checks and notes before any work", () => {
  it("shows a note once per run, however many rows, and hands the provider the job's schema", async () => {
    const t = setup(GOOD);
    const seen: ParamsContext[] = [];
    const events: RunEvent[] = [];
    const summary = await runJob(await t.load(), {
      env: t.env,
      registry: notingRegistry(seen),
      onEvent: (e) => events.push(e),
    });
    assert.equal(summary.ok, 3);
    assert.deepEqual(events.filter((e) => e.type === "note" || e.type === "warning"), [{
      type: "note",
      message: "noting: old-1 is deprecated",
    }]);
    assert.deepEqual(seen[0].schema, { type: "object", properties: { a: { type: "string" } } });
    assert.equal(seen[0].structured, true);
  });

  it("lists the notes in a plan", async () => {
    const t = setup(GOOD);
    const { estimate } = await planJobCost(await t.load(), {
      env: t.env,
      registry: notingRegistry([]),
    });
    assert.deepEqual(estimate.notes, ["old-1 is deprecated"]);
  });

  it("places a refused schema at its position in the job file", async () => {
    const t = setup(
      "  type: object\n  properties:\n    a: { type: string }\n    b: { not: { type: string } }\n",
    );
    await assert.rejects(
      runJob(await t.load(), { env: t.env, registry: notingRegistry([]) }),
      (e: unknown) => {
        assert.ok(e instanceof LoomJobError);
        assert.match(e.message, /job\.yaml:10:\d+: schema\.properties\.b: noting cannot send not/);
        return true;
      },
    );
  });
});
