/** The emulator's launcher, run as a real child process, then used through the official SDK. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { runtimeName } from "../core/base/runtime.ts";

/** Starts `scripts/emulator.ts` (Deno, from source) or `dist/scripts/emulator.js` (Node). */
function launch(args: string[]) {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const script = fileURLToPath(new URL(`./emulator${ext}`, import.meta.url));
  const argv = runtimeName() === "deno" ? ["run", "-A", script, ...args] : [script, ...args];
  return spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
}

it("the launcher serves every provider until stopped, with faults from the command line", async () => {
  const child = launch([
    "--provider",
    "all",
    "--api-key",
    "k-123",
    "--fault",
    "status=503,retry-after-ms=1,first=1",
  ]);
  let out = "";
  child.stdout!.setEncoding("utf8");
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("Ctrl-C stops.")) resolve();
    });
    child.on(
      "exit",
      (code) => reject(new Error(`launcher exited (${code}) before it was ready: ${out}`)),
    );
  });
  try {
    await ready;
    const urls = Object.fromEntries(
      [...out.matchAll(/^(\w+)\s+(http:\/\/127\.0\.0\.1:\d+\S*)/gm)].map((m) => [m[1], m[2]]),
    );
    assert.deepEqual(Object.keys(urls).sort(), [
      "anthropic",
      "compatible",
      "gemini",
      "openai",
      "openrouter",
    ]);
    assert.match(urls.openai, /\/v1$/);
    assert.match(urls.openrouter, /\/api\/v1$/);
    const client = new OpenAI({ apiKey: "k-123", baseURL: urls.openai, maxRetries: 2 });
    // The first request meets the 503 fault; the SDK retries and gets the answer.
    const completion = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(completion.choices[0].message.content, "[gpt-4o-mini] hi");
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("close", resolve));
  }
});

it("the launcher says in one line what is wrong (a missing OpenAPI file), and --help gives its usage", async () => {
  const run = (args: string[]) => {
    const child = launch(args);
    let out = "";
    let err = "";
    child.stdout!.setEncoding("utf8").on("data", (d) => (out += d));
    child.stderr!.setEncoding("utf8").on("data", (d) => (err += d));
    return new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
      child.on("close", (code) => resolve({ code, out, err }))
    );
  };
  const missing = await run(["--provider", "openai", "--openai-spec", "/nonexistent/openai.yaml"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^emulator: .*\/nonexistent\/openai\.yaml/);
  assert.equal(missing.err.trim().split("\n").length, 1, missing.err);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /--openai-spec F +OpenAI's OpenAPI file .* or "off"/);
});
