/**
 * Runs the whole test suite under Deno (from source) and under Node (against the npm build), and
 * fails when any test fails or when a runtime ran no test at all. Ends with one line
 * `total: N passed, M failed`.
 *
 *   node scripts/run-tests.ts            both runtimes
 *   node scripts/run-tests.ts deno|node  one of them
 *
 * Node is the one package.json pins (node_modules/.bin/node) unless LOOM_TEST_NODE names another
 * Node binary: CI sets it to test each Node version of its matrix.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => join(root, "node_modules", ".bin", name);

/** Runs a command with output passed through; resolves with its exit code. */
function run(command: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, ...env },
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

function findTests(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(path, suffix));
    else if (entry.name.endsWith(suffix)) out.push(path);
  }
  return out.sort();
}

interface Tally {
  passed: number;
  failed: number;
}

async function testDeno(scratch: string): Promise<Tally> {
  const junit = join(scratch, "deno.xml");
  const code = await run(
    bin("deno"),
    ["test", "-A", "--reporter=pretty", `--junit-path=${junit}`],
    { NO_COLOR: "1" },
  );
  // No report means deno stopped before running tests (a type error, say): count it as a failure.
  if (!existsSync(junit)) return { passed: 0, failed: 1 };
  const xml = readFileSync(junit, "utf8");
  // Deno reports each top-level describe as a test case and each `it` as a case named
  // "describe > it"; count only the leaves, as Node does.
  const cases = (xml.match(/<testcase\b[\s\S]*?<\/testcase>/g) ?? []).map((c) => ({
    name: c.match(/name="([^"]*)"/)?.[1] ?? "",
    failed: c.includes("<failure"),
  }));
  const leaves = cases.filter((c) => !cases.some((o) => o.name.startsWith(`${c.name} &gt; `)));
  const failed = leaves.filter((c) => c.failed).length;
  const tally = { passed: leaves.length - failed, failed };
  if (code !== 0 && tally.failed === 0) tally.failed = 1;
  return tally;
}

/** The Node that builds and runs the Node tests: `$LOOM_TEST_NODE`, else the pinned one. */
function testedNode(): string {
  const chosen = process.env.LOOM_TEST_NODE;
  if (!chosen) return bin("node");
  if (!existsSync(chosen)) {
    console.error(`LOOM_TEST_NODE=${chosen} is not a file: give a Node binary's path, or unset it`);
    process.exit(2);
  }
  return chosen;
}

async function testNode(scratch: string, node: string): Promise<Tally> {
  console.log(`node: ${node} ${execFileSync(node, ["--version"], { encoding: "utf8" }).trim()}`);
  const built = await run(node, [join(root, "scripts", "build.ts")]);
  if (built !== 0) return { passed: 0, failed: 1 };
  const files = findTests(join(root, "dist"), ".test.js").map((f) => relative(root, f));
  const tap = join(scratch, "node.tap");
  const code = await run(node, [
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=tap",
    `--test-reporter-destination=${tap}`,
    ...files,
  ]);
  if (!existsSync(tap)) return { passed: 0, failed: 1 };
  const text = readFileSync(tap, "utf8");
  const count = (name: string) =>
    Number(text.match(new RegExp(`^# ${name} (\\d+)$`, "m"))?.[1] ?? 0);
  const tally = { passed: count("pass"), failed: count("fail") + count("cancelled") };
  if (code !== 0 && tally.failed === 0) tally.failed = 1;
  return tally;
}

const wanted = process.argv.slice(2);
const runtimes = wanted.length ? wanted : ["deno", "node"];
const node = runtimes.includes("node") ? testedNode() : "";
const scratch = mkdtempSync(join(tmpdir(), "loom-test-"));
let passed = 0;
let failed = 0;
let empty = false;
try {
  for (const runtime of runtimes) {
    if (runtime !== "deno" && runtime !== "node") {
      throw new Error(`unknown runtime ${runtime} (deno or node)`);
    }
    console.log(`\n=== tests under ${runtime} ===`);
    const tally = runtime === "deno" ? await testDeno(scratch) : await testNode(scratch, node);
    console.log(`${runtime}: ${tally.passed} passed, ${tally.failed} failed`);
    if (tally.passed + tally.failed === 0) {
      console.error(`${runtime} ran no test: that is a failure`);
      empty = true;
    }
    passed += tally.passed;
    failed += tally.failed;
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`total: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || empty ? 1 : 0;
