/**
 * One chaos trial: a fresh folder with a dataset and a job file, a private `LOOM_HOME`, an
 * emulator with a key of its own, and the real `loom` CLI run as a child process. Everything the
 * trial sees is checked against the invariants a user relies on; a broken one is recorded as a
 * {@link Violation} (the trial goes on, so one report lists every kind of harm):
 *
 * - `double-payment`: the emulator saw more batch creates than the job has shards.
 * - `lost-file`: a file the user had (the input, an existing output, a link's target) changed or
 *   vanished without `--force`; or a temporary file of Loom's was left behind after recovery.
 * - `lost-row` / `wrong-row`: the output is missing a row, has them out of order, or answers a
 *   row with another row's answer.
 * - `stack-trace`: a command printed a stack trace (or an uncaught error) instead of one line.
 * - `stranded-job`: the job could not be finished by the commands Loom itself tells the user to run.
 * - `secret-leak`: the API key appeared in an output, a state or cache file, or a message.
 * - `unexpected`: a command did something else the scenario rules out (a wrong exit code, say).
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parse } from "csv-parse/sync";
import { type CliResult, spawnCli } from "../../core/test-support/run-cli.ts";
import {
  type BatchSchedule,
  type Emulator,
  type FaultRule,
  realClock,
  startEmulator,
} from "../../emulator/mod.ts";
import { CREATE, EMULATED, KEY_ENV } from "../../core/test-support/batch-providers.ts";
import { urlPasswords } from "../../core/base/secrets.ts";
import type { Rng } from "./rng.ts";

/** The kinds of harm a trial looks for (see the module comment). */
export type ViolationKind =
  | "double-payment"
  | "lost-file"
  | "lost-row"
  | "wrong-row"
  | "stack-trace"
  | "stranded-job"
  | "secret-leak"
  | "unexpected";

/** One broken invariant, with what showed it. */
export interface Violation {
  kind: ViolationKind;
  detail: string;
}

/**
 * A provider a trial can run against: the four batch providers through the emulator, or echo.
 */
export type ChaosProvider = "openai" | "anthropic" | "google" | "openrouter" | "echo";

/** The emulator and the key variable of each emulated provider. */
const EMULATOR = EMULATED satisfies Record<Exclude<ChaosProvider, "echo">, string>;
const KEY_VARIABLE = KEY_ENV;

/** The model each provider is asked for; the emulator answers `[<model>] <prompt>`. */
export const MODEL: Record<ChaosProvider, string> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-sonnet-4-5",
  google: "gemini-2.5-flash",
  openrouter: "openai/gpt-4o-mini",
  echo: "echo-1",
};

/** What a trial's job looks like. */
export interface TrialSetup {
  provider: ChaosProvider;
  mode: "batch" | "sync";
  /** Prompts of the dataset, one row each (default {@link PROMPTS}). */
  prompts?: readonly string[];
  /** Batch mode: requests per shard (default 3). */
  shardSize?: number;
  /** Extra top-level YAML lines of the job file (`concurrency: 4`, …). */
  jobLines?: string[];
  /** Extra `provider_options` members, as YAML (`timeout_ms: 2000`). */
  providerOptions?: string[];
  /** Fault rules the emulator starts with. */
  faults?: FaultRule[];
  /** The emulator's delay before every answer (default none). */
  latencyMs?: number;
  /** How fast the emulator's batches end (default at once). */
  schedule?: BatchSchedule;
  /** The output's path in the job file, relative to the trial's folder (default `out.csv`). */
  output?: string;
  /** The key as the user's environment holds it (default: the emulator's own key). */
  keyAsWritten?: (key: string) => string;
  /** False: no key in the environment (the scenario puts it elsewhere, a `.env` say). */
  keyInEnvironment?: boolean;
  /** The emulator's key (default a random one of 33 characters). */
  apiKey?: string;
}

/** The default dataset: short prompts whose answers differ row by row. */
export const PROMPTS: readonly string[] = [
  "name a colour",
  "count to three",
  "spell the word loom",
  "describe a quiet river",
  "list two prime numbers",
  "say hello in French",
  "what comes after Tuesday",
];

/** A command's result, with how long it ran. */
export interface CommandResult extends CliResult {
  /** The arguments, as reports show them (an `--api-key` value masked). */
  args: string[];
  /** True when it died by SIGKILL (the trial's timer or a failpoint). */
  killed: boolean;
}

/** Options of {@link Trial.loom}. */
export interface LoomOptions {
  /** Kill the command with SIGKILL after this many milliseconds (if still running). */
  killAfterMs?: number;
  /** Kill the command with SIGKILL once this holds (checked every 10 ms): an event, not a time. */
  killWhen?: () => boolean;
  /** Extra environment for this command only. */
  env?: Record<string, string>;
}

/** Signs of a stack trace or an uncaught error in what a command printed. */
const STACK_TRACE = [
  /^\s+at (?:async )?\S.*(?::\d+:\d+\)?|\(native\)|<anonymous>\)?)$/m,
  /\bUncaught\b/,
  /^node:internal\//m,
  /^\S+\.(?:ts|js|mjs):\d+$/m,
];

/** A trial's workspace and its checks. Make one with {@link openTrial}; always `close()` it. */
export class Trial {
  readonly violations: Violation[] = [];
  /** Commands run so far, for the report of a failed trial. */
  readonly commands: CommandResult[] = [];
  readonly dir: string;
  readonly home: string;
  readonly input: string;
  readonly output: string;
  readonly job: string;
  readonly key: string;
  readonly prompts: readonly string[];
  readonly shards: number;
  /** Shards the trial's submissions paid for (more than `shards` when it submits several jobs). */
  paidFor: number;
  #env: Record<string, string>;
  #protected = new Map<string, string | null>();
  #secrets: string[] = [];

  readonly setup: TrialSetup;
  readonly rng: Rng;
  readonly emu: Emulator | undefined;

  constructor(
    setup: TrialSetup,
    rng: Rng,
    emu: Emulator | undefined,
    root: string,
    state?: string,
  ) {
    this.setup = setup;
    this.rng = rng;
    this.emu = emu;
    this.dir = root;
    this.home = join(root, "home");
    this.input = join(root, "in.csv");
    this.output = join(root, setup.output ?? "out.csv");
    this.job = join(root, "job.yaml");
    this.prompts = setup.prompts ?? PROMPTS;
    const size = setup.mode === "batch" ? (setup.shardSize ?? 3) : this.prompts.length;
    this.shards = Math.ceil(this.prompts.length / size);
    this.paidFor = this.shards;
    this.key = emu?.apiKey ?? "";
    this.#env = {
      LOOM_HOME: this.home,
      LOOM_SETTLE_SECONDS: "0.3",
      ...(state ? { LOOM_STATE: state } : {}),
    };
    // The store's password is a secret like the key: it must reach no file and no message.
    this.#secrets.push(...urlPasswords(state));
    if (this.key) this.#secrets.push(this.key.trim());
    if (setup.provider !== "echo" && setup.keyInEnvironment !== false) {
      const written = setup.keyAsWritten ? setup.keyAsWritten(this.key) : this.key;
      this.#env[KEY_VARIABLE[setup.provider]] = written;
    }
    writeFileSync(
      this.input,
      `id,prompt\n${
        this.prompts.map((p, i) => `${i + 1},"${p.replaceAll('"', '""')}"`).join("\n")
      }\n`,
    );
    const options = [
      ...(emu ? [`base_url: "${emu.baseURL}"`] : []),
      ...(setup.providerOptions ?? []),
    ];
    writeFileSync(
      this.job,
      [
        "dataset: { path: in.csv }",
        `provider: ${setup.provider}`,
        ...(options.length ? [`provider_options: { ${options.join(", ")} }`] : []),
        `model: ${MODEL[setup.provider]}`,
        `mode: ${setup.mode}`,
        ...(setup.mode === "batch" ? [`batch: { max_requests: ${size} }`] : []),
        `output: { path: ${JSON.stringify(setup.output ?? "out.csv")} }`,
        ...(setup.jobLines ?? []),
        "",
      ].join("\n"),
    );
    this.protect(this.input);
  }

  /** The environment commands run with (a copy). */
  get env(): Record<string, string> {
    return { ...this.#env };
  }

  /** Records a broken invariant. */
  fail(kind: ViolationKind, detail: string): void {
    this.violations.push({ kind, detail });
  }

  /** Records `unexpected` unless `ok`. */
  expect(ok: boolean, detail: string): boolean {
    if (!ok) this.fail("unexpected", detail);
    return ok;
  }

  /**
   * Runs `loom <args>` in the trial's folder. Its output is checked at once for stack traces and
   * for the key; with `killAfterMs` it is killed by SIGKILL then, if still running.
   */
  async loom(args: string[], options: LoomOptions = {}): Promise<CommandResult> {
    const { child, done } = spawnCli(args, {
      cwd: this.dir,
      env: { ...this.#env, ...options.env },
    });
    const timer = options.killAfterMs === undefined
      ? undefined
      : setTimeout(() => child.kill("SIGKILL"), options.killAfterMs);
    const when = options.killWhen;
    const watch = when ? setInterval(() => when() && child.kill("SIGKILL"), 10) : undefined;
    const result = await done.finally(() => {
      clearTimeout(timer);
      clearInterval(watch);
    });
    const shown = withoutKeys(args);
    const command: CommandResult = { ...result, args: shown, killed: result.signal === "SIGKILL" };
    this.commands.push(command);
    const said = `${result.stdout}\n${result.stderr}`;
    const trace = stackTraceIn(result.stderr);
    if (trace) this.fail("stack-trace", `loom ${shown.join(" ")}: ${trace}`);
    if (this.#secrets.some((s) => said.includes(s))) {
      this.fail("secret-leak", `loom ${shown.join(" ")} printed the API key`);
    }
    return command;
  }

  /** Remembers a file's content (or its absence), to check later that nothing changed it. */
  protect(path: string): void {
    this.#protected.set(path, fingerprint(path));
  }

  /** Treats `value` (trimmed) as a key too: it must never be printed or written, as the trial's own. */
  secret(value: string): void {
    this.#secrets.push(value.trim());
  }

  /** Forgets a protected file (the scenario allows it to change from now on, e.g. `--force`). */
  release(path: string): void {
    this.#protected.delete(path);
  }

  /** Batches created at the provider so far (echo: its batch files); refused creates do not count. */
  creations(): number {
    if (!this.emu) {
      const batches = join(this.home, "echo-batches");
      return existsSync(batches)
        ? readdirSync(batches).filter((f) => /^echobatch-[0-9a-f]+\.json$/.test(f)).length
        : 0;
    }
    const provider = this.setup.provider as keyof typeof CREATE;
    // A create answered with an error status (a wrong key, a 429, a validation error) made no
    // batch; one with no answer (status 0: lost, or dropped) may have, so it counts.
    return this.emu.log.find(CREATE[provider]).filter((e) => e.status < 400).length;
  }

  /** The jobs `loom list --json` shows. */
  async jobs(): Promise<ListedJob[]> {
    const listed = await this.loom(["list", "--json"]);
    if (listed.code !== 0) {
      this.fail(
        "unexpected",
        `loom list --json exited ${listed.code}: ${firstLine(listed.stderr)}`,
      );
      return [];
    }
    return listed.stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line) as ListedJob);
  }

  /** The answer the emulator (or echo) gives a prompt. */
  answerOf(prompt: string): string {
    return this.setup.provider === "echo" ? prompt : `[${MODEL[this.setup.provider]}] ${prompt}`;
  }

  /**
   * Checks the output at `path` (default the job's): every row, in input order, with its own
   * columns and the answer to its own prompt, or an error for the rows in `erroredRows` (0-based).
   */
  checkOutput(path = this.output, erroredRows: ReadonlySet<number> = new Set()): boolean {
    if (!existsSync(path)) {
      this.fail("lost-row", `no output at ${relative(this.dir, path)}`);
      return false;
    }
    let rows: Record<string, string>[];
    try {
      rows = parse(readFileSync(path), { columns: true }) as Record<string, string>[];
    } catch (e) {
      this.fail("wrong-row", `the output is not valid CSV: ${(e as Error).message}`);
      return false;
    }
    if (rows.length !== this.prompts.length) {
      this.fail(
        "lost-row",
        `${rows.length} rows in the output, ${this.prompts.length} in the input`,
      );
      return false;
    }
    let ok = true;
    rows.forEach((row, i) => {
      const prompt = this.prompts[i];
      if (row.id !== String(i + 1) || row.prompt !== prompt) {
        this.fail("wrong-row", `row ${i + 1} is ${JSON.stringify(row)}: out of order or altered`);
        ok = false;
      } else if (erroredRows.has(i)) {
        if (!row.llm_error || row.llm_response) {
          this.fail("wrong-row", `row ${i + 1} should carry an error: ${JSON.stringify(row)}`);
          ok = false;
        }
      } else if (row.llm_response !== this.answerOf(prompt) || row.llm_error) {
        this.fail("lost-row", `row ${i + 1} is not answered: ${JSON.stringify(row)}`);
        ok = false;
      }
    });
    return ok;
  }

  /**
   * Checks that no more batches were created than were paid for: the job's shards, or (a trial
   * that submits several jobs) `expected`, which the report then shows as the shards paid for.
   */
  checkPayments(expected = this.shards): void {
    this.paidFor = Math.max(this.paidFor, expected);
    const created = this.creations();
    if (created > expected) {
      this.fail("double-payment", `${created} batches created for ${expected} shards`);
    }
  }

  /**
   * The end-of-trial checks: protected files unchanged, no Loom temporary file left in the
   * trial's folder, the key in no file under it.
   */
  finalChecks(): void {
    for (const [path, before] of this.#protected) {
      const now = fingerprint(path);
      if (now !== before) {
        this.fail(
          "lost-file",
          `${relative(this.dir, path)} ${now === null ? "was removed" : "was changed"}`,
        );
      }
    }
    for (const file of walk(this.dir)) {
      const name = relative(this.dir, file);
      if (/\.loom-tmp$/.test(name) && !name.startsWith("home/")) {
        this.fail("lost-file", `a temporary file was left behind: ${name}`);
      }
      if (name === ".env" || !lstatSync(file).isFile()) continue;
      const text = readFileSync(file);
      if (this.#secrets.some((s) => text.includes(s))) {
        this.fail("secret-leak", `the API key is in ${name}`);
      }
    }
  }
}

/** A job as `loom list --json` prints it. */
export interface ListedJob {
  id: string;
  status: string;
  shards: Array<{ batch: string | null; state: string | null; requests: number }>;
}

/**
 * Opens a trial: its folder, its emulator (none for echo) and its job; `state` is its
 * `LOOM_STATE` (a fresh PostgreSQL database), or none for the SQLite file under its `LOOM_HOME`.
 */
export async function openTrial(setup: TrialSetup, rng: Rng, state?: string): Promise<Trial> {
  const root = mkdtempSync(join(tmpdir(), "loom-chaos-"));
  mkdirSync(join(root, "home"), { mode: 0o700 });
  const emu = setup.provider === "echo" ? undefined : await startEmulator({
    provider: EMULATOR[setup.provider],
    apiKey: setup.apiKey ?? `sk-chaos-${randomBytes(12).toString("hex")}`,
    schedule: setup.schedule ?? { advance: "instant" },
    latencyMs: setup.latencyMs,
    clock: realClock,
    models: "any",
    faults: setup.faults,
  });
  return new Trial(setup, rng, emu, root, state);
}

/** Runs the final checks, stops the emulator and removes the trial's folder. */
export async function closeTrial(trial: Trial): Promise<void> {
  try {
    trial.finalChecks();
  } finally {
    await trial.emu?.stop();
    rmSync(trial.dir, { recursive: true, force: true });
  }
}

function fingerprint(path: string): string | null {
  if (!existsSync(path)) return null;
  const stat = lstatSync(path);
  const kind = stat.isSymbolicLink() ? "link" : "file";
  return `${kind}:${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/** A command's arguments as reports show them: the value of `--api-key` masked. */
function withoutKeys(args: readonly string[]): string[] {
  return args.map((arg, i) => (args[i - 1] === "--api-key" ? "***" : arg));
}

/** The line of a command's stderr that says what went wrong (notes and progress skipped). */
export function firstLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines.find((l) => /^loom: /.test(l) && !/^loom: (note|warning):/.test(l)) ?? lines[0] ??
    "";
}

/** The lines around a stack trace in `text` (or an uncaught error), if it has one. */
export function stackTraceIn(text: string): string | undefined {
  const re = STACK_TRACE.find((r) => r.test(text));
  return re ? excerpt(text, re) : undefined;
}

function excerpt(text: string, re: RegExp): string {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => re.test(l));
  return lines.slice(Math.max(0, at - 2), at + 2).join(" | ").slice(0, 400);
}
