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
 * - `batch_polls`: in batch mode, a batch stays `in_progress` for this many status checks
 *   (default 0: it has ended by the first check), to try `loom fetch` on a pending job.
 *
 * Token counting (`loom tokens`) uses the same estimate as the usage columns, 4 characters a token
 * over the system prompt and the messages.
 *
 * Batch mode works locally: a batch is a small record under `LOOM_HOME/echo-batches/` and its
 * requests an upload under `LOOM_HOME/echo-uploads/` (deleted once its results are saved),
 * answered when its results are read.
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { canonicalJson } from "../../../core/base/canonical-json.ts";
import { LoomProviderError, LoomUsageError } from "../../../core/base/errors.ts";
import { lineBytes } from "../../../core/data/line-bytes.ts";
import { exists, writeFileAtomic } from "../../../core/data/output.ts";
import { definePlugin } from "../../../core/plugins/plugin.ts";
import { eachOf } from "../_shared/chunks.ts";
import { estimateTokens } from "../../../core/run/limits.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchLabel,
  BatchOutcome,
  BatchSubmitOptions,
  GenerateRequest,
  GenerateResult,
  ProviderV1,
} from "../../../core/spec/provider.ts";

/** Options of the echo provider. */
export interface EchoOptions {
  reply?: "prompt" | "request";
  latency_ms?: number;
  fail_on?: string;
  batch_polls?: number;
}

const KNOWN = ["reply", "latency_ms", "fail_on", "batch_polls", "apiKey"];

function checkOptions(options: Record<string, unknown>): EchoOptions {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length) {
    throw new LoomUsageError(
      `echo: unknown provider option(s) ${
        unknown.join(", ")
      } (known: reply, latency_ms, fail_on, batch_polls)`,
    );
  }
  const { reply, latency_ms, fail_on } = options;
  if (reply !== undefined && reply !== "prompt" && reply !== "request") {
    throw new LoomUsageError(
      `echo: reply must be "prompt" or "request", got ${JSON.stringify(reply)}`,
    );
  }
  if (latency_ms !== undefined && !(typeof latency_ms === "number" && latency_ms >= 0)) {
    throw new LoomUsageError("echo: latency_ms must be a number of milliseconds >= 0");
  }
  const { batch_polls } = options;
  if (
    batch_polls !== undefined &&
    !(typeof batch_polls === "number" && Number.isInteger(batch_polls) && batch_polls >= 0)
  ) {
    throw new LoomUsageError("echo: batch_polls must be a whole number >= 0");
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

/** The answer to one request, or why it fails (`fail_on`). */
function answer(request: GenerateRequest, options: EchoOptions): GenerateResult {
  const prompt = promptOf(request);
  if (options.fail_on !== undefined && prompt.includes(options.fail_on)) {
    throw new LoomProviderError(
      `echo: prompt contains ${JSON.stringify(options.fail_on)} (fail_on)`,
      { status: 400 },
    );
  }
  const text = (options.reply ?? "prompt") === "request" ? canonicalJson(request) : prompt;
  return {
    text,
    finishReason: "stop",
    usage: { inputTokens: inputTokens(request), outputTokens: estimateTokens([text], 0) },
  };
}

/** A request's input tokens by {@link estimateTokens}: the system prompt and every message. */
export function inputTokens(request: GenerateRequest): number {
  return estimateTokens([request.system ?? "", ...request.messages.map((m) => m.content)], 0);
}

/** Creates an echo provider; `home` (Loom's home) is where its local batches live. */
export function createEchoProvider(options: EchoOptions = {}, home?: string): ProviderV1 {
  const reply = options.reply ?? "prompt";
  const latency = options.latency_ms ?? 0;
  return {
    specificationVersion: "loom.provider.v1",
    name: "echo",
    capabilities: { sync: true, batch: home !== undefined, tokens: true },
    // The options that change an answer must change the cache key too.
    cacheIdentity: {
      reply,
      ...(options.fail_on === undefined ? {} : { fail_on: options.fail_on }),
    },
    ...(home === undefined ? {} : { batch: echoBatch(home, options) }),
    // The same estimate as the answers' usage, offline: `loom tokens` works with no key.
    async countTokens(request, callOptions) {
      callOptions?.signal?.throwIfAborted();
      return inputTokens(request);
    },
    async generate(request, callOptions) {
      if (latency > 0) await sleep(latency, undefined, { signal: callOptions?.signal });
      callOptions?.signal?.throwIfAborted();
      return answer(request, options);
    },
  };
}

/** A local batch as echo records it: how it stands, and the upload holding its requests. */
interface EchoBatch {
  label: string;
  createdAt: string;
  polls: number;
  cancelled: boolean;
  /** Requests in the batch. */
  total: number;
  /** The upload (under `echo-uploads/`) holding its requests, one JSON line each. */
  file: string;
  /** The requests themselves, in batches written by an earlier Loom (no upload). */
  items?: BatchItem[];
}

const NEWLINE = 0x0a;
/**
 * Bytes of an upload decoded to text at a time (it is read a megabyte at a time, `lineBytes`): a
 * chunk's text stays under V8's large-object size (half a 256 KiB page,
 * `kMaxRegularHeapObjectSize`), so each chunk is an ordinary object that dies young instead of a
 * page of its own in the large-object space (where 256 KiB chunks piled up to tens of megabytes at
 * a fetch's peak).
 */
const UPLOAD_DECODE_BYTES = 32 * 1024;

/**
 * Lines of JSON parsed as one array, a fifth faster than a parse a line. When that fails, or
 * does not give one item a line (damaged lines can join into other values: `1,[2` and `3]`),
 * they are parsed one by one, so the error is the bad line's own.
 */
function parseLines(lines: readonly string[]): BatchItem[] {
  try {
    const items: unknown[] = JSON.parse(`[${lines.join(",")}]`);
    if (items.length === lines.length && items.every(isItem)) return items as BatchItem[];
  } catch { /* parsed one by one below */ }
  return lines.map((line) => JSON.parse(line));
}

/** Whether a parsed value has an item's shape (an object with a custom id). */
function isItem(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    typeof (value as { customId?: unknown }).customId === "string";
}

/** Lines written to an upload at a time: one write of tens of kilobytes, not one per request. */
const LINES_PER_WRITE = 256;

/**
 * The items as JSON lines, a few hundred to a chunk, counting them in `count.items` (the
 * upload's requests) as they go.
 */
async function* jsonLines(
  items: Iterable<BatchItem> | AsyncIterable<BatchItem>,
  count: { items: number },
): AsyncGenerator<string> {
  let chunk = "";
  let lines = 0;
  for await (const item of items) {
    chunk += JSON.stringify(item) + "\n";
    count.items++;
    if (++lines === LINES_PER_WRITE) {
      yield chunk;
      chunk = "";
      lines = 0;
    }
  }
  if (chunk) yield chunk;
}

/**
 * Echo's batch API, on local files: `batches` holds each batch's small record (as a provider's
 * batch object stays listed), `uploads` the requests (as an uploaded input file), streamed in
 * and out so a shard is never one string. The upload is deleted once the batch's results are
 * saved (`deleteUpload`), so a finished job leaves a few hundred bytes a batch.
 */
function echoBatch(home: string, options: EchoOptions): BatchApi {
  const batches = join(home, "echo-batches");
  const uploads = join(home, "echo-uploads");
  const named = (id: string, pattern: RegExp, what: string) => {
    if (!pattern.test(id)) {
      throw new LoomProviderError(`echo: no ${what} ${JSON.stringify(id)}`, {
        status: 404,
        fatal: true,
      });
    }
    return id;
  };
  const path = (id: string) => join(batches, `${named(id, /^echobatch-[0-9a-f]+$/, "batch")}.json`);
  const uploadPath = (file: string) =>
    join(uploads, `${named(file, /^echofile-[0-9a-f]+$/, "file")}.jsonl`);
  const load = async (id: string): Promise<EchoBatch> => {
    try {
      return JSON.parse(await readFile(path(id), "utf8"));
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") {
        throw new LoomProviderError(`echo: no batch ${id}`, { status: 404, fatal: true });
      }
      throw error;
    }
  };
  const save = (id: string, batch: EchoBatch) =>
    writeFileAtomic(path(id), [JSON.stringify(batch)], { mode: 0o600, dirMode: 0o700 });
  const ended = (b: EchoBatch) => b.cancelled || b.polls >= (options.batch_polls ?? 0);
  /**
   * The lines of a batch's upload, a chunk at a time: read into one reused buffer and split on
   * `\n` (a JSON line holds no raw newline), with no stream or line-reader layer between (a fetch
   * reads a million of them).
   */
  async function* uploadLines(batch: EchoBatch): AsyncGenerator<string[]> {
    const file = uploadPath(batch.file);
    if (!(await exists(file))) {
      throw new LoomProviderError(`echo: the input file ${batch.file} of this batch was deleted`, {
        status: 404,
        fatal: true,
      });
    }
    const decoder = new TextDecoder();
    const cutShort = () =>
      new LoomProviderError(`echo: the input file ${batch.file} of this batch is cut short`, {
        status: 500,
      });
    for await (const chunk of lineBytes(file, 0, Infinity, cutShort)) {
      // Whole lines at most UPLOAD_DECODE_BYTES at a time, each decoded on its own (no stream).
      for (let at = 0; at < chunk.length;) {
        let end = at + UPLOAD_DECODE_BYTES >= chunk.length
          ? chunk.length
          : chunk.lastIndexOf(NEWLINE, at + UPLOAD_DECODE_BYTES - 1) + 1;
        if (end <= at) end = chunk.indexOf(NEWLINE, at) + 1; // a line longer than that
        const lines = decoder.decode(chunk.subarray(at, end)).split("\n");
        at = end;
        yield lines.filter(Boolean);
      }
    }
  }
  /**
   * Writes the upload (unless an earlier attempt's is reused), then creates the batch. The upload
   * is `lines` as they are (the items as `encodeItem` wrote them, with `count` of them), or
   * `items` written here.
   */
  async function submitItems(
    items: Iterable<BatchItem> | AsyncIterable<BatchItem>,
    label: BatchLabel,
    submitOptions: BatchSubmitOptions | undefined,
    count?: number,
    lines?: AsyncIterable<Uint8Array>,
  ): Promise<BatchHandle> {
    // An upload of these items by an interrupted attempt is used again, as providers allow.
    let file = submitOptions?.upload?.file;
    let total = count ?? (items as readonly BatchItem[]).length;
    if (file === undefined || !(await exists(uploadPath(file)))) {
      file = `echofile-${randomBytes(8).toString("hex")}`;
      const written = { items: 0 };
      // A provider's upload, simulated: not flushed to disk (as Loom's own files are), since its
      // durability is the provider's. A 1M-row job's 20 uploads took 0.4 s to flush.
      await writeFileAtomic(uploadPath(file), lines ?? jsonLines(items, written), {
        mode: 0o600,
        dirMode: 0o700,
        durable: false,
      });
      if (!lines) total = written.items;
      await submitOptions?.onUploaded?.({ file });
    }
    await submitOptions?.onCreate?.();
    const id = `echobatch-${randomBytes(8).toString("hex")}`;
    await save(id, {
      label: label.name,
      createdAt: new Date().toISOString(),
      polls: 0,
      cancelled: false,
      total,
      file,
    });
    return { id };
  }
  const api: BatchApi = {
    limits: { maxRequests: 50_000, maxBytes: 200_000_000 },
    encodeItem: (item) => JSON.stringify(item),
    itemBytes: (item) => Buffer.byteLength(JSON.stringify(item)) + 1,
    announcesCreate: true,
    submit: (items, label, submitOptions) => submitItems(items, label, submitOptions),
    // The items go to the upload as they are read: a shard is never held in memory.
    submitStream: (source, label, submitOptions) =>
      source.lines
        ? submitItems([], label, submitOptions, source.count, source.lines())
        : submitItems(source.items(), label, submitOptions, source.count),
    async deleteUpload(upload) {
      if (upload.file !== undefined) await rm(uploadPath(upload.file), { force: true });
    },
    async status(handle) {
      const batch = await load(handle.id);
      const done = ended(batch);
      if (!done) {
        batch.polls++;
        await save(handle.id, batch);
      }
      const state = batch.cancelled ? "cancelled" : done ? "completed" : "in_progress";
      const total = batch.items?.length ?? batch.total;
      return { state, counts: { total, ...(state === "completed" ? { succeeded: total } : {}) } };
    },
    results: (handle, customIds, callOptions) =>
      eachOf(api.resultChunks!(handle, customIds, callOptions)),
    // A chunk of the upload's outcomes at once: a step of the stream each, not a line.
    async *resultChunks(handle) {
      const batch = await load(handle.id);
      const outcome = (item: BatchItem): BatchOutcome => {
        if (batch.cancelled) {
          return { customId: item.customId, error: "cancelled before it ran", kind: "cancelled" };
        }
        try {
          return { customId: item.customId, result: answer(item.request, options) };
        } catch (error) {
          return { customId: item.customId, error: (error as Error).message, kind: "failed" };
        }
      };
      if (batch.items) {
        yield batch.items.map(outcome);
        return;
      }
      for await (const lines of uploadLines(batch)) {
        if (lines.length) yield parseLines(lines).map(outcome);
      }
    },
    async cancel(handle) {
      const batch = await load(handle.id);
      if (!ended(batch)) {
        batch.cancelled = true;
        await save(handle.id, batch);
      }
    },
    async find(label) {
      let names: string[] = [];
      try {
        names = await readdir(batches);
      } catch {
        return [];
      }
      const found = [];
      for (const name of names.filter((n) => n.endsWith(".json"))) {
        const id = name.slice(0, -".json".length);
        const batch = await load(id).catch(() => undefined);
        if (batch?.label === label.name) {
          found.push({ handle: { id }, exact: true, at: batch.createdAt });
        }
      }
      return found.sort((a, b) => b.at.localeCompare(a.at)).map(({ handle, exact }) => ({
        handle,
        exact,
      }));
    },
  };
  return api;
}

export default definePlugin({
  apiVersion: 1,
  kind: "provider",
  name: "echo",
  description:
    "Offline and deterministic: answers with the rendered prompt (no key, no network); batch mode works locally.",
  create: (options, context) => createEchoProvider(checkOptions(options), context.home),
});
