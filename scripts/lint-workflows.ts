/**
 * Lints the GitHub Actions workflows with actionlint (see release/actionlint.ts) and exits 1 when
 * any has a problem, or when there is no workflow to lint. `.ci/run` runs it before the tests.
 *
 *   node scripts/lint-workflows.ts            .github/workflows/*.yml and *.yaml
 *   node scripts/lint-workflows.ts FILE...    these files
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { formatProblem, lintWorkflowFiles, workflowFiles } from "./release/actionlint.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
// `npm run` starts scripts in the package's folder; INIT_CWD is where the user typed it.
const cwd = process.env.INIT_CWD ?? process.cwd();
const given = process.argv.slice(2).map((f) => resolve(cwd, f));
const missing = given.filter((f) => !existsSync(f));
if (missing.length) {
  console.error(`lint-workflows: no such file: ${missing.join(", ")}`);
  process.exit(2);
}
const files = given.length ? given : workflowFiles(root);
if (files.length === 0) {
  console.error("lint-workflows: no workflow in .github/workflows: nothing was checked");
  process.exit(1);
}
const problems = await lintWorkflowFiles(files, cwd);
for (const p of problems) console.error(formatProblem(p));
console.log(`lint-workflows: ${files.length} file(s), ${problems.length} problem(s)`);
process.exitCode = problems.length ? 1 : 0;
