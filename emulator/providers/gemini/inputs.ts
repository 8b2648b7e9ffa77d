/**
 * A batch's requests, read from its inlined requests or from the lines of its input file. Each
 * becomes an item that either runs or already carries the error its output entry will report: a
 * file line that is not JSON, does not parse as a request, or asks for something invalid.
 * @module
 */
import { isObject } from "./common.ts";
import type { FileStore } from "./files.ts";
import { requestTexts } from "./generate.ts";
import { BATCH_REQUEST, FILE_LINE, GENERATE_REQUEST } from "./schema.ts";
import { parse, problemMessage, semanticProblems, violationMessage } from "./validate.ts";

/** One request of a batch, ready to run (or already known to fail). */
export interface Item {
  request?: Record<string, unknown>;
  /** Inline `metadata` (a Struct), echoed with the response. */
  metadata?: Record<string, unknown>;
  /** A file line's `key`, echoed on its output line. */
  key?: string;
  /** Why this request cannot run (a bad line, an invalid request). */
  error?: string;
}

/** Marks an item whose request is semantically invalid. */
function checked(item: Item, model: string): Item {
  const problems = semanticProblems(item.request ?? {}, model);
  return problems.length ? { ...item, error: problemMessage(problems) } : item;
}

/** Items from parsed inlined requests (`[{request, metadata}]`). */
export function inlineItems(requests: Array<Record<string, unknown>>, model: string): Item[] {
  return requests.map((r) => {
    const request = isObject(r.request) ? r.request : {};
    return checked({ request, ...(isObject(r.metadata) ? { metadata: r.metadata } : {}) }, model);
  });
}

/** Items from a batch input file, one per non-blank line, in order. */
export function fileItems(text: string, model: string, version: string): Item[] {
  const items: Item[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      items.push({ error: `Invalid JSON on line ${i + 1} of the input file.` });
      return;
    }
    if (!isObject(value)) {
      items.push({ error: `Line ${i + 1} of the input file is not a JSON object.` });
      return;
    }
    // Lines are `{"key", "request"}`; the REST docs also show bare GenerateContentRequests.
    const bare = value.request === undefined && value.contents !== undefined;
    const { value: parsed, violations } = parse(
      value,
      bare ? GENERATE_REQUEST : FILE_LINE,
      version,
    );
    // unverified: what the API echoes for a key that is not a string (the guide's keys are strings).
    const key = !bare && typeof parsed.key === "string" ? parsed.key : undefined;
    if (violations.length) {
      items.push({ key, error: violationMessage(violations) });
      return;
    }
    const request = bare ? parsed : parsed.request;
    items.push(checked({ key, request: isObject(request) ? request : {} }, model));
  });
  return items;
}

/** The prompt texts a batch create carries: its inlined requests, or the lines of its input file. */
export function batchPrompts(body: Record<string, unknown>, files: FileStore): string[] {
  const batch = parse(body, BATCH_REQUEST, "v1").value.batch;
  const input = isObject(batch) && isObject(batch.inputConfig) ? batch.inputConfig : {};
  const requests = isObject(input.requests) ? input.requests.requests : undefined;
  if (Array.isArray(requests)) {
    return requests.flatMap((
      r,
    ) => (isObject(r) && isObject(r.request) ? requestTexts(r.request) : []));
  }
  const name = typeof input.fileName === "string" ? input.fileName : "";
  const file = files.get(name.replace(/^files\//, ""));
  return file ? linePrompts(new TextDecoder().decode(file.bytes)) : [];
}

/** Prompt texts in JSONL (an input file, or one upload chunk of it); unreadable lines are skipped. */
export function linePrompts(text: string): string[] {
  return text.split("\n").flatMap((line) => {
    try {
      const value = JSON.parse(line);
      if (!isObject(value)) return [];
      return requestTexts(isObject(value.request) ? value.request : value);
    } catch {
      return [];
    }
  });
}
