/**
 * The plugin-package half of `scripts/check-package.ts`: what a plugin author does with
 * examples/loom-plugin-acme, on a scratch copy. Install its dev dependencies (loom-batch from the
 * tarball just packed), build it with tsc, run its own tests against the installed loom-batch,
 * `npm pack` it; then install its tarball beside loom-batch in an app and run the `loom` CLI on a
 * job that loads it by package name (`plugins: [loom-plugin-acme]`), its `ltsv` format reading
 * the dataset and its `acme` provider calling an emulator started from `loom-batch/emulator`,
 * live and as a batch, under Node and under Deno.
 */
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** What check-package.ts hands over: where things are and its two helpers. */
export interface PluginPackageCheck {
  /** The repository. */
  readonly root: string;
  readonly scratch: string;
  /** A project with the loom-batch tarball installed. */
  readonly app: string;
  /** The loom-batch tarball. */
  readonly loomTarball: string;
  sh(cmd: string, args: string[], cwd: string, env?: Record<string, string>): string;
  check(ok: boolean, what: string): void;
}

/** What run-with-emulator.js prints. */
interface Emulated {
  code: number;
  output: string;
  /** Chat completions and batches the emulator was asked for. */
  calls: number;
  batches: number;
  leaked: boolean;
}

const INSTALL = ["--no-audit", "--no-fund", "--loglevel=error"];

/** Rows of the dataset: the greeting holds a tab, written `\t`, and non-ASCII text. */
const GREETINGS = [
  { id: "1", greeting: "Hello from Zoë", lang: "en" },
  { id: "2", greeting: "東京へようこそ", lang: "ja" },
  { id: "3", greeting: "a\ttab", lang: "xx" },
];

const ltsvLine = (fields: Record<string, string>) =>
  Object.entries(fields).map(([k, v]) => `${k}:${v.replaceAll("\t", "\\t")}`).join("\t") + "\n";

/** An LTSV file's records (values unescaped), as the example's format reads them. */
const ltsvRecords = (text: string) =>
  text.split("\n").filter((line) => line !== "").map((line) =>
    Object.fromEntries(
      line.split("\t").map((field) => {
        const colon = field.indexOf(":");
        return [field.slice(0, colon), field.slice(colon + 1).replaceAll("\\t", "\t")];
      }),
    )
  );

/**
 * Starts the emulator, runs the command given (with `--base-url` and `ACME_API_KEY` pointing at
 * it), stops it; prints the command's exit code, output and the requests the emulator answered.
 */
const RUN_WITH_EMULATOR = `import { spawn } from "node:child_process";
import { startEmulator } from "loom-batch/emulator";
const [command, ...args] = process.argv.slice(2);
const emu = await startEmulator({ provider: "openai", openaiSpec: false, models: "any" });
let output = "";
const code = await new Promise((resolve, reject) => {
  const child = spawn(command, [...args, "--base-url", emu.baseURL], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ACME_API_KEY: emu.apiKey, NO_COLOR: "1" },
  });
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  child.on("error", reject);
  child.on("exit", (code) => resolve(code ?? 1));
});
const calls = emu.log.count("POST /v1/chat/completions");
const batches = emu.log.count("POST /v1/batches");
await emu.stop();
console.log(JSON.stringify({ code, output, calls, batches, leaked: output.includes(emu.apiKey) }));
`;

export function checkPluginPackage(c: PluginPackageCheck): void {
  const { root, scratch, app, sh, check } = c;
  // The author's steps, on a copy: install, build, test, pack.
  const plugin = join(scratch, "loom-plugin-acme");
  cpSync(join(root, "examples", "loom-plugin-acme"), plugin, {
    recursive: true,
    filter: (src) => !/[/\\](dist|node_modules)$/.test(src),
  });
  sh("npm", ["install", "--no-save", ...INSTALL, c.loomTarball], plugin);
  sh("npm", ["run", "build", "--silent"], plugin);
  const tested = sh("npm", ["test", "--silent"], plugin);
  const count = (name: string) => Number(tested.match(new RegExp(`^# ${name} (\\d+)$`, "m"))?.[1]);
  check(
    count("pass") >= 20 && count("fail") === 0 && count("cancelled") === 0,
    `the plugin package's own tests pass against the installed loom-batch (${
      count("pass")
    } passed)`,
  );
  const packed =
    JSON.parse(sh("npm", ["pack", "--json", "--pack-destination", scratch], plugin))[0];
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  check(
    files.includes("dist/mod.js") && files.includes("dist/mod.d.ts") &&
      !files.some((f) => f.startsWith("src/") || f.includes(".test.")),
    "the plugin's tarball has its JavaScript and types, no sources and no tests",
  );

  // A user's app: both tarballs installed, a job naming the plugin by its package name.
  sh("npm", ["install", ...INSTALL, join(scratch, packed.filename)], app);
  writeFileSync(join(app, "greetings.ltsv"), GREETINGS.map(ltsvLine).join(""));
  writeFileSync(
    join(app, "greetings.yaml"),
    `dataset: { path: greetings.ltsv }
prompt: { column: greeting }
provider: acme
model: gpt-4o-mini
output: { path: out/greetings_results.ltsv }
plugins: [loom-plugin-acme]
`,
  );
  writeFileSync(join(app, "run-with-emulator.js"), RUN_WITH_EMULATOR);

  const cli = join("node_modules", "loom-batch", "dist", "cli", "main.js");
  const runtimes: Array<[string, string[]]> = [
    ["Node", [join(app, "node_modules", ".bin", "loom")]],
    ["Deno", [join(root, "node_modules", ".bin", "deno"), "run", "-A", cli]],
  ];
  const expected = JSON.stringify(GREETINGS.map((g) => ({
    ...g,
    llm_response: `[gpt-4o-mini] ${g.greeting}`,
    llm_error: "",
  })));
  // Live calls, and one batch that `--wait` polls to its end.
  const modes: Array<[string, string[], (r: Emulated) => boolean]> = [
    ["sync", ["--sync"], (r) => r.calls === GREETINGS.length && r.batches === 0],
    ["batch", ["--batch", "--wait", "--poll", "0.1"], (r) => r.calls === 0 && r.batches === 1],
  ];
  for (const [runtime, command] of runtimes) {
    for (const [mode, flags, called] of modes) {
      const out = join(app, "out", `greetings_${runtime}_${mode}.ltsv`);
      const args = [...command, "run", "greetings.yaml", ...flags, "-q", "--force", "-o", out];
      const home = join(scratch, `loom-home-${runtime}-${mode}`);
      const printed = sh("node", ["run-with-emulator.js", ...args], app, { LOOM_HOME: home });
      const result: Emulated = JSON.parse(printed.trim().split("\n").at(-1)!);
      const what = `loom under ${runtime} (${mode})`;
      check(result.code === 0, `${what} runs the job (exit ${result.code})`);
      check(!result.leaked, `${what} never prints the API key`);
      check(
        called(result) && JSON.stringify(ltsvRecords(readFileSync(out, "utf8"))) === expected,
        `${what} loads loom-plugin-acme by name: its ltsv format reads and writes the dataset, ` +
          `its acme provider answers each row through the emulator`,
      );
    }
  }
}
