/**
 * Starts the provider emulator from the command line, so a person can point Loom (or any SDK) at
 * it and try a job by hand. Runs until Ctrl-C.
 *
 *   deno run -A scripts/emulator.ts --provider openai --port 8080 --latency 200 \
 *     --fault status=429,retry-after=1,every=5 --schedule polls:2
 *   deno run -A scripts/emulator.ts --provider all      (one server per provider)
 *
 * Options:
 *   --provider P    openai | anthropic | gemini | openrouter | compatible (Ollama-like) | all (default all)
 *   --port N        first port (default: free ports); with "all", N, N+1, …
 *   --api-key K     the key clients must send (default test-key)
 *   --latency MS    delay before every answer
 *   --fault SPEC    a fault rule, repeatable: status=N[,retry-after=S][,retry-after-ms=MS] | slow=MS
 *                   | drop | error-in-200 | error-in-choice[,code=N] | model-down[=MODEL] | reply=TEXT (commas as %2C)
 *                   | lost=late|reset|never[,delay=MS][,listed-after=N] (carried out, answer lost),
 *                   then conditions every=N, first=N, path=…, prompt=…, batch=…
 *   --schedule S    batch pace: instant | polls:N | clock:MS (real time per state) | manual
 *   --models M      any (default) or a comma-separated list of accepted model ids
 *   --openai-spec F OpenAI's OpenAPI file the openai emulator checks requests against, or "off";
 *                   default: $LOOM_OPENAI_SPEC, else shared/reference/specs/openai-openapi.yaml
 *                   beside the repository, else off (said when it starts)
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { realClock } from "../emulator/clock.ts";
import { defaultSpecPath } from "../emulator/contract/spec.ts";
import { parseFaultSpec } from "../emulator/faults.ts";
import type { BatchSchedule } from "../emulator/schedule.ts";
import { type Emulator, type ProviderName, startEmulator } from "../emulator/server.ts";

const PROVIDERS: ProviderName[] = ["openai", "anthropic", "gemini", "openrouter", "compatible"];

const wantedOpenai = (provider: string) => provider === "all" || provider === "openai";

/** Parses `--schedule`. */
export function parseSchedule(text: string): BatchSchedule {
  const [kind, value] = text.split(":");
  if (kind === "instant" || kind === "manual") return { advance: kind };
  const n = Number(value);
  if (kind === "polls" && n >= 1) return { advance: "polls", polls: n };
  if (kind === "clock" && n >= 1) return { advance: "clock", stepMs: n };
  throw new Error(`--schedule ${text}: use instant, polls:N, clock:MS or manual`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      provider: { type: "string", default: "all" },
      port: { type: "string" },
      "api-key": { type: "string", default: "test-key" },
      latency: { type: "string" },
      fault: { type: "string", multiple: true, default: [] },
      schedule: { type: "string", default: "polls:1" },
      models: { type: "string", default: "any" },
      "openai-spec": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    // The usage is this file's opening comment.
    const source = readFileSync(new URL(import.meta.url), "utf8");
    console.log(
      source.slice(source.indexOf("/**") + 3, source.indexOf("*/")).replace(/^ \* ?/gm, ""),
    );
    return;
  }
  let spec = values["openai-spec"];
  if (spec === undefined && wantedOpenai(values.provider)) {
    // By hand, an emulator without the contract check beats none: said, not silent.
    try {
      defaultSpecPath();
    } catch {
      spec = "off";
      console.log(
        "openai: OpenAI's OpenAPI file was not found: requests are not checked against it " +
          "(--openai-spec FILE to check them)",
      );
    }
  }
  const wanted = values.provider === "all" ? PROVIDERS : [values.provider as ProviderName];
  for (const p of wanted) {
    if (!PROVIDERS.includes(p)) {
      throw new Error(`--provider ${p}: use ${PROVIDERS.join(", ")} or all`);
    }
  }
  const firstPort = values.port === undefined ? 0 : Number(values.port);
  const running: Emulator[] = [];
  for (const [i, provider] of wanted.entries()) {
    running.push(
      await startEmulator({
        provider,
        port: firstPort ? firstPort + i : 0,
        apiKey: values["api-key"],
        latencyMs: values.latency === undefined ? undefined : Number(values.latency),
        faults: values.fault.map(parseFaultSpec),
        schedule: parseSchedule(values.schedule),
        clock: realClock,
        models: values.models === "any" ? "any" : values.models.split(","),
        ...(spec === undefined ? {} : { openaiSpec: spec === "off" ? false : spec }),
      }),
    );
  }
  for (const e of running) {
    console.log(`${e.provider.padEnd(10)} ${e.baseURL}   (api key: ${e.apiKey})`);
  }
  console.log("Ctrl-C stops.");
  const stop = async () => {
    await Promise.all(running.map((e) => e.stop()));
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

// A bad option or a missing OpenAPI file is one line that says what to do, not a stack trace.
await main().catch((error) => {
  console.error(`emulator: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
});
