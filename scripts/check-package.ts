/**
 * Checks the npm package as a user gets it: packs `loom-batch`, installs the tarball into a
 * scratch project, runs the `loom` command (and its `loom-batch` alias, which `npx loom-batch`
 * finds) on a checked-in dataset, imports the library, `loom-batch/testing`, `loom-batch/plugin`
 * and `loom-batch/emulator`, and resolves the job schema `loom-batch/schema.json`; then builds,
 * tests and packs the example plugin package and loads it by name under Node and Deno
 * (check-plugin-package.ts); and starts `loom view` from the tarball and reads its page, whose
 * files are no TypeScript. Run after `npm run build`:  node scripts/check-package.ts
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { checkPluginPackage } from "./check-plugin-package.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "loom-package-"));
// Our node_modules/.bin first, so `#!/usr/bin/env node` finds the Node the package supports.
const env = {
  ...process.env,
  PATH: `${join(root, "node_modules", ".bin")}${delimiter}${process.env.PATH}`,
};
const sh = (cmd: string, args: string[], cwd: string, more: Record<string, string> = {}) =>
  execFileSync(cmd, args, {
    cwd,
    env: { ...env, ...more },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`package check failed: ${what}`);
  console.log(`ok - ${what}`);
}

/** Starts `loom view out.csv`, fetches its page, script and rows, and stops it with SIGINT. */
async function viewServes(loom: string, cwd: string): Promise<boolean> {
  const child = spawn(loom, ["view", "out.csv"], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    let out = "";
    for await (const chunk of child.stdout!) {
      out += chunk;
      if (out.includes("\n")) break;
    }
    const url = new URL(out.trim());
    const page = await (await fetch(url)).text();
    const headers = { "x-loom-token": url.searchParams.get("token")! };
    const script = await fetch(new URL("/assets/app.js", url), { headers });
    const rows = await (await fetch(new URL("/api/files/0/rows", url), { headers })).json() as {
      indexed: number;
    };
    return page.includes("/assets/app.js") && script.ok && rows.indexed === 10;
  } finally {
    child.kill("SIGINT");
  }
}

try {
  const packed = JSON.parse(sh("npm", ["pack", "--json", "--pack-destination", scratch], root))[0];
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  check(
    files.includes("dist/cli/main.js") && files.includes("dist/core/mod.d.ts"),
    "the tarball has the CLI and the types",
  );
  check(files.includes("jobs/loom.schema.json"), "the tarball has the job schema");
  check(
    readdirSync(join(root, "cli", "view", "assets")).every((f) =>
      files.includes(`dist/cli/view/assets/${f}`)
    ),
    "the tarball has every file of loom view's page",
  );
  check(
    !files.some((f) => /\.test\.(js|d\.ts)$/.test(f) || /\.ts$/.test(f) && !f.endsWith(".d.ts")),
    "the tarball has no tests and no TypeScript sources",
  );

  const app = join(scratch, "app");
  sh("mkdir", ["-p", app], scratch);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module" }),
  );
  sh("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    join(scratch, packed.filename),
  ], app);

  const bin = join(app, "node_modules", ".bin");
  for (const name of ["loom", "loom-batch"]) {
    const version = sh(join(bin, name), ["--version"], app).trim();
    check(
      version === `loom ${packed.version} (Node ${process.versions.node})`,
      `${name} --version prints ${packed.version} and the runtime`,
    );
  }
  // What `npx loom-batch` runs in a project that has the package: our bin, not another package.
  const npx = sh("npx", ["--no-install", "loom-batch", "--version"], app).trim();
  check(npx.startsWith(`loom ${packed.version} `), "npx loom-batch runs the installed package");

  sh(join(app, "node_modules", ".bin", "loom"), [
    "run",
    "-f",
    join(root, "jobs", "data", "hello.csv"),
    "-p",
    "echo",
    "-m",
    "m",
    "-c",
    "text",
    "--sync",
    "-q",
    "-o",
    join(app, "out.csv"),
  ], app);
  const out = readFileSync(join(app, "out.csv"), "utf8");
  check(
    out.startsWith("id,topic,text,llm_response,llm_error\n") && out.includes("Zoë visited 東京"),
    "loom runs a dataset end to end",
  );

  check(
    await viewServes(join(bin, "loom"), app),
    "loom view serves its page and the output's rows",
  );

  writeFileSync(
    join(app, "use.js"),
    `import { definePlugin, Registry, VERSION } from "loom-batch";
import { storageConformance, formatConformance } from "loom-batch/testing";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const schemaFile = createRequire(import.meta.url).resolve("loom-batch/schema.json");
const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
const p = definePlugin({ apiVersion: 1, kind: "provider", name: "mine", create: () => ({}) });
new Registry().register(p);
console.log(VERSION, typeof storageConformance, typeof formatConformance, schema.title);\n`,
  );
  const used = sh("node", ["use.js"], app).trim();
  check(
    used === `${packed.version} function function Loom job file`,
    "the library and loom-batch/testing import; loom-batch/schema.json resolves to the job schema",
  );

  // The plugin kit as an author uses it: definePlugin and a real error class from
  // loom-batch/plugin, the emulator answering a call, the provider suite in loom-batch/testing.
  writeFileSync(
    join(app, "kit.js"),
    `import { definePlugin, failpoint, LoomError, LoomProviderError } from "loom-batch/plugin";
import { startEmulator } from "loom-batch/emulator";
import { providerConformance } from "loom-batch/testing";
const p = definePlugin({ apiVersion: 1, kind: "format", name: "mine", create: () => ({}) });
const e = new LoomProviderError("x", { status: 429, retryable: true });
const emu = await startEmulator({ provider: "openai", openaiSpec: false });
const res = await fetch(emu.baseURL + "/chat/completions", {
  method: "POST",
  headers: { authorization: "Bearer " + emu.apiKey, "content-type": "application/json" },
  body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
});
const text = (await res.json()).choices[0].message.content;
await emu.stop();
console.log(p.kind, LoomError.isInstance(e), e.retryable, typeof failpoint,
  typeof providerConformance, text);\n`,
  );
  const kit = sh("node", ["kit.js"], app).trim();
  check(
    kit === "format true true function function [gpt-4o-mini] hi",
    `loom-batch/plugin and loom-batch/emulator import and work (${kit})`,
  );

  checkPluginPackage({
    root,
    scratch,
    app,
    loomTarball: join(scratch, packed.filename),
    sh,
    check,
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
