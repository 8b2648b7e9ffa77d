import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { repoRoot } from "../test-support/paths.ts";
import { loadJob } from "./load.ts";

it("every checked-in job validates and points editors at the generated schema", async () => {
  const dir = join(repoRoot(), "jobs");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 3, `jobs: ${files.join(", ")}`);
  for (const file of files) {
    const text = readFileSync(join(dir, file), "utf8");
    assert.match(text, /^# yaml-language-server: \$schema=\.\/loom\.schema\.json$/m, file);
    const job = await loadJob({ file: join(dir, file), cwd: "/" });
    assert.ok(job.spec.dataset.path.startsWith(dir), `${file}: paths resolve against the job file`);
  }
});
