/**
 * A compatible-server profile: an Ollama-like `/v1/chat/completions`, standing in for the local
 * and self-hosted servers that speak OpenAI's protocol only in part (Ollama, llama.cpp, …). It
 * reads the fields Ollama's OpenAI layer reads (`ChatCompletionRequest` in ollama/ollama
 * `openai/openai.go`) and silently ignores every other one, as Go's JSON decoding does: above all
 * `max_completion_tokens`, so only `max_tokens` caps an answer. Other differences from OpenAI:
 * `json_schema.schema` is all of `response_format.json_schema` it reads, `reasoning_effort` must
 * be high, medium, low or none, any key (or none) is accepted, and every model id is served
 * unless the emulator's `models` option lists them.
 * @module
 */
import {
  type EmulatorContext,
  type EmulatorRequest,
  HttpError,
  type ProviderEmulator,
  type Reply,
} from "../server.ts";
import { chatPrompts, chatStream } from "./openai.ts";
import { generate, type OutputFormat } from "./openai/chat.ts";

/** Request fields Ollama's OpenAI layer decodes; anything else is dropped unread. */
export const COMPATIBLE_FIELDS: readonly string[] = [
  "model",
  "messages",
  "stream",
  "stream_options",
  "max_tokens",
  "seed",
  "stop",
  "temperature",
  "frequency_penalty",
  "presence_penalty",
  "top_p",
  "response_format",
  "tools",
  "reasoning",
  "reasoning_effort",
];

const EFFORTS = ["high", "medium", "low", "none"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Ollama's error body: OpenAI's shape with `type` from the status and null `param`/`code`. */
function errorReply(status: number, message: string): Reply {
  const type = status === 400
    ? "invalid_request_error"
    : status === 404
    ? "not_found_error"
    : "api_error";
  return { status, json: { error: { message, type, param: null, code: null } } };
}

/** The answer format Ollama derives from `response_format` (a `json_schema` without a schema is plain text). */
function formatOf(value: unknown): OutputFormat {
  if (!isObject(value) || typeof value.type !== "string") return { type: "text" };
  const type = value.type.trim().toLowerCase();
  if (type === "json_object") return { type: "json_object" };
  const js = value.json_schema;
  if (type === "json_schema" && isObject(js) && isObject(js.schema)) {
    return { type: "json_schema", name: "answer", schema: js.schema };
  }
  return { type: "text" };
}

function stopsOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) return [];
  // unverified: Ollama's chat path keeps only the string entries of a `stop` array (its completions path refuses others).
  return value.filter((s): s is string => typeof s === "string");
}

/** The last user message's text, or the last text of all. */
function promptOf(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? body.messages.filter(isObject) : [];
  const user = messages.filter((m) => m.role === "user").map((m) =>
    chatPrompts({ messages: [m] })[0] ?? ""
  );
  return user.at(-1) ?? chatPrompts(body).at(-1) ?? "";
}

/** Creates the compatible-server provider of an emulator. */
export function createCompatible(ctx: EmulatorContext): ProviderEmulator {
  const chat = (req: EmulatorRequest): Reply => {
    const body = req.json();
    if (!isObject(body)) throw new HttpError(400, "invalid request body");
    const read = Object.fromEntries(
      Object.entries(body).filter(([k]) => COMPATIBLE_FIELDS.includes(k)),
    );
    if (!Array.isArray(read.messages) || read.messages.length === 0) {
      throw new HttpError(400, "[] is too short - 'messages'");
    }
    const model = typeof read.model === "string" ? read.model : "";
    if (Array.isArray(ctx.options.models) && !ctx.options.models.includes(model)) {
      // unverified: the wording of Ollama's 404 for a model that is not pulled.
      throw new HttpError(404, `model "${model}" not found, try pulling it first`);
    }
    const effort = isObject(read.reasoning) ? read.reasoning.effort : read.reasoning_effort;
    if (
      effort !== undefined && effort !== null && effort !== "" &&
      !EFFORTS.includes(effort as string)
    ) {
      throw new HttpError(
        400,
        `invalid reasoning value: '${effort}' (must be "high", "medium", "low", or "none")`,
      );
    }
    const maxTokens = typeof read.max_tokens === "number" && read.max_tokens > 0
      ? read.max_tokens
      : undefined;
    const texts = chatPrompts(read);
    const g = generate(
      model,
      promptOf(read),
      texts,
      formatOf(read.response_format),
      stopsOf(read.stop),
      maxTokens,
      req.replyText,
    );
    const completion = {
      id: `chatcmpl-${ctx.next("chatcmpl")}`,
      object: "chat.completion",
      created: Math.floor(ctx.clock.now() / 1000),
      model,
      system_fingerprint: "fp_ollama",
      choices: [{
        index: 0,
        message: { role: "assistant", content: g.text },
        finish_reason: g.finish,
      }],
      usage: {
        prompt_tokens: g.inputTokens,
        completion_tokens: g.outputTokens,
        total_tokens: g.inputTokens + g.outputTokens,
      },
    };
    if (read.stream !== true) return { json: completion };
    const includeUsage = isObject(read.stream_options) &&
      read.stream_options.include_usage === true;
    return {
      body: chatStream(completion, includeUsage),
      headers: { "content-type": "text/event-stream" },
    };
  };

  return {
    routes: [{ method: "POST", path: /^\/v1\/chat\/completions$/, answers: true, handle: chat }],
    error: errorReply,
    // A local server without auth: Ollama ignores the key the client must still send.
    authenticate: () => null,
    prompts: (req) => (req.method === "POST" ? chatPrompts(req.json()) : []),
  };
}
