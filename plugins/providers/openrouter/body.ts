/**
 * The create body of an OpenRouter batch, as sent: `{"endpoint","model","completion_window",
 * ["provider",]"requests":[{"custom_id","body"},…]}`, `endpoint` and `model` before `requests`
 * (OpenRouter stream-parses the body and answers 400 otherwise: the quickstart, and the
 * `openrouter-batch` crate, which verified it live). Each `body` is {@link chatCompletionBody}
 * with `max_tokens`, the builder sync calls use, so both modes send the same parameters.
 * @module
 */
import { Buffer } from "node:buffer";
import type { BatchItem, BatchLimits } from "../../../core/spec/provider.ts";
import { chatCompletionBody } from "../openai/request.ts";

/** The endpoint every Loom batch runs against (one endpoint per batch). */
export const BATCH_ENDPOINT = "/v1/chat/completions";

/**
 * What one batch may hold: "up to 5,000 requests and 200 MB per batch" (the Batch API guide's
 * key facts). The megabyte is read as 10⁶ bytes (the smaller reading), less 1 MB kept for the
 * body's envelope (endpoint, model, provider) and any difference in how OpenRouter counts.
 */
export const OPENROUTER_BATCH_LIMITS: BatchLimits = {
  maxRequests: 5_000,
  maxBytes: 200_000_000 - 1_000_000,
};

/** One request of the create body, exactly as sent: `{custom_id, body}`. */
export function batchRequest(
  item: BatchItem,
): { custom_id: string; body: Record<string, unknown> } {
  return { custom_id: item.customId, body: chatCompletionBody(item.request, "max_tokens") };
}

/** One request of the create body as JSON (no newline in it: JSON escapes them). */
export function encodeItem(item: BatchItem): string {
  return JSON.stringify(batchRequest(item));
}

/** Bytes `item` adds to the create body: its JSON in UTF-8, plus the comma that separates it. */
export function itemBytes(item: BatchItem): number {
  return Buffer.byteLength(encodeItem(item), "utf8") + 1;
}

/**
 * The batch-level routing a request's `provider` parameter asks for: OpenRouter routes a whole
 * batch to one provider and reads only `only` and `allow_fallbacks` there (the reference's
 * BatchProviderPreferences). The parameter stays in each request body too, as sync sends it.
 */
function routingOf(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const provider = body.provider;
  if (typeof provider !== "object" || provider === null || Array.isArray(provider)) {
    return undefined;
  }
  const { only, allow_fallbacks } = provider as Record<string, unknown>;
  const routing = {
    ...(only === undefined ? {} : { only }),
    ...(allow_fallbacks === undefined ? {} : { allow_fallbacks }),
  };
  return Object.keys(routing).length ? routing : undefined;
}

/**
 * The body's opening, up to and including `"requests":[`, from the first request's body: the
 * endpoint and the model first (OpenRouter's stream parser needs them before the requests).
 */
export function bodyHead(first: Record<string, unknown>): string {
  const routing = routingOf(first);
  const head = JSON.stringify({
    endpoint: BATCH_ENDPOINT,
    model: first.model,
    completion_window: "24h",
    ...(routing ? { provider: routing } : {}),
  });
  return `${head.slice(0, -1)},"requests":[`;
}

/** The whole create body for `items`, as sent. */
export function createBody(items: readonly BatchItem[]): string {
  const encoded = items.map(encodeItem);
  return `${bodyHead(batchRequest(items[0]).body)}${encoded.join(",")}]}`;
}

/** The body bytes from chunks of `encodeItem` lines (each copied: a chunk is valid until the next). */
export async function bodyFromLines(
  chunks: AsyncIterable<Uint8Array>,
): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  const lines = Buffer.concat(parts);
  if (!lines.length) return undefined;
  // Each line ends with "\n", which JSON never holds unescaped: the separators become commas.
  const first = JSON.parse(lines.subarray(0, lines.indexOf(0x0a)).toString("utf8"));
  for (let i = lines.indexOf(0x0a); i !== -1; i = lines.indexOf(0x0a, i + 1)) lines[i] = 0x2c;
  return Buffer.concat([
    Buffer.from(bodyHead(first.body), "utf8"),
    lines.subarray(0, lines.length - 1),
    Buffer.from("]}", "utf8"),
  ]);
}

/** The body from streamed items, built a few hundred requests at a time. */
export async function bodyFromItems(items: AsyncIterable<BatchItem>): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let text = "";
  let n = 0;
  for await (const item of items) {
    if (n === 0) parts.push(Buffer.from(bodyHead(batchRequest(item).body), "utf8"));
    text += `${n ? "," : ""}${encodeItem(item)}`;
    if (++n % 256 === 0) {
      parts.push(Buffer.from(text, "utf8"));
      text = "";
    }
  }
  if (n === 0) return undefined;
  parts.push(Buffer.from(`${text}]}`, "utf8"));
  return Buffer.concat(parts);
}
