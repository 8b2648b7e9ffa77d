/**
 * A loopback emulator of the OpenAI, Anthropic, Gemini and OpenRouter HTTP APIs, for testing
 * Loom (and its plugins) through the official SDKs without a network. Start one per provider:
 *
 * ```ts
 * const emu = await startEmulator({ provider: "openai" });
 * const client = new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL });
 * // … emu.log.count("POST /v1/chat/completions"), emu.step(batchId), emu.faults.add(rule)
 * await emu.stop();
 * ```
 * Plugin authors import it as `loom-batch/emulator` (the provider conformance suite of
 * `loom-batch/testing` runs against it). Loom itself never uses it: only core/testing imports it
 * (`core/layers.test.ts`). `scripts/emulator.ts` starts it from the command line.
 * @module
 */
export { type Clock, ManualClock, realClock } from "./clock.ts";
export { type FaultAction, type FaultMatch, type FaultRule, parseFaultSpec } from "./faults.ts";
export type { LoggedRequest, RequestLog } from "./log.ts";
export type { BatchSchedule } from "./schedule.ts";
export {
  type BatchScenario,
  type Emulator,
  type EmulatorOptions,
  type ProviderName,
  startEmulator,
} from "./server.ts";
export { answer, countTokens, measureTokens } from "./answers.ts";
export { sampleValue } from "./schema-sample.ts";
