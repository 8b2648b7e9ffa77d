/**
 * The `echo` provider: offline and deterministic. Its answer is derived from the rendered
 * request alone, so a merged output can be checked row by row against its input, and jobs can
 * be tried end to end with no key and no network.
 *
 * Options (`provider_options` in a job):
 * - `reply`: `prompt` (default) answers with the rendered prompt itself; `request` answers with
 *   the whole request (model, system, messages, params) as canonical JSON.
 * - `latency_ms`: wait this long before answering (to watch progress or try interruption).
 * - `fail_on`: rows whose prompt contains this text fail, to see how failed rows are merged.
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { canonicalJson } from "../../../core/canonical-json.ts";
import { LoomProviderError, LoomUsageError } from "../../../core/errors.ts";
import { definePlugin } from "../../../core/plugin.ts";
import type { GenerateRequest, ProviderV1 } from "../../../core/spec/provider.ts";

/** Options of the echo provider. */
export interface EchoOptions {
  reply?: "prompt" | "request";
  latency_ms?: number;
  fail_on?: string;
}

const KNOWN = ["reply", "latency_ms", "fail_on", "apiKey"];

function checkOptions(options: Record<string, unknown>): EchoOptions {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length) {
    throw new LoomUsageError(`echo: unknown provider option(s) ${unknown.join(", ")} (known: reply, latency_ms, fail_on)`);
  }
  const { reply, latency_ms, fail_on } = options;
  if (reply !== undefined && reply !== "prompt" && reply !== "request") {
    throw new LoomUsageError(`echo: reply must be "prompt" or "request", got ${JSON.stringify(reply)}`);
  }
  if (latency_ms !== undefined && !(typeof latency_ms === "number" && latency_ms >= 0)) {
    throw new LoomUsageError("echo: latency_ms must be a number of milliseconds >= 0");
  }
  if (fail_on !== undefined && (typeof fail_on !== "string" || fail_on === "")) {
    throw new LoomUsageError("echo: fail_on must be a non-empty string");
  }
  return options as EchoOptions;
}

/** The prompt of a request: its last user message. */
function promptOf(request: GenerateRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    if (request.messages[i].role === "user") return request.messages[i].content;
  }
  return "";
}

/** A rough, deterministic token estimate (4 characters a token) so usage columns are filled. */
const estimateTokens = (text: string) => Math.ceil(text.length / 4);

/** Creates an echo provider. */
export function createEchoProvider(options: EchoOptions = {}): ProviderV1 {
  const reply = options.reply ?? "prompt";
  const latency = options.latency_ms ?? 0;
  return {
    specificationVersion: "loom.provider.v1",
    name: "echo",
    capabilities: { sync: true, batch: false, tokens: false },
    // The options that change an answer must change the cache key too.
    cacheIdentity: { reply, ...(options.fail_on === undefined ? {} : { fail_on: options.fail_on }) },
    async generate(request, callOptions) {
      if (latency > 0) await sleep(latency, undefined, { signal: callOptions?.signal });
      callOptions?.signal?.throwIfAborted();
      const prompt = promptOf(request);
      if (options.fail_on !== undefined && prompt.includes(options.fail_on)) {
        throw new LoomProviderError(`echo: prompt contains ${JSON.stringify(options.fail_on)} (fail_on)`, {
          status: 400,
        });
      }
      const text = reply === "request" ? canonicalJson(request) : prompt;
      const input = (request.system ?? "") + request.messages.map((m) => m.content).join("");
      return {
        text,
        finishReason: "stop",
        usage: { inputTokens: estimateTokens(input), outputTokens: estimateTokens(text) },
      };
    },
  };
}

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "echo",
  description: "Offline and deterministic: answers with the rendered prompt (no key, no network).",
  create: (options) => createEchoProvider(checkOptions(options)),
});
