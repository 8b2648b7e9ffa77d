/**
 * Turns a dataset row into the provider-neutral {@link GenerateRequest}. This is the one request
 * builder: sync calls, batch files and the cache key all start from what it returns, so every
 * mode sends the same thing.
 * @module
 */
import type { JobSpec } from "../job/schema.ts";
import { findColumnsInTemplate, renderTemplate } from "../job/template.ts";
import type { ChatMessage, GenerateRequest } from "../spec/provider.ts";

/** The column a job reads its prompt from when it names neither a column nor a template. */
export const DEFAULT_PROMPT_COLUMN = "prompt";

/** How a job turns rows into prompts. */
export type PromptSpec = NonNullable<JobSpec["prompt"]>;

/** Every column a job's prompt and system prompt refer to, in order of appearance. */
export function promptColumns(prompt: PromptSpec | undefined): string[] {
  const columns = prompt?.template !== undefined
    ? findColumnsInTemplate(prompt.template)
    : [prompt?.column ?? DEFAULT_PROMPT_COLUMN];
  if (prompt?.system !== undefined) columns.push(...findColumnsInTemplate(prompt.system));
  return [...new Set(columns)];
}

/** The request for one row, or why the row cannot be sent. */
export type BuiltRequest = { request: GenerateRequest } | { error: string };

function text(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * Builds the request for a row. A row whose prompt is empty, or that lacks a column the prompt
 * needs, gets an error instead: it keeps its place in the output and is never sent.
 * `responseSchema` is the job's loaded answer schema, if it has one.
 */
export function buildRequest(
  job: Pick<JobSpec, "prompt" | "model" | "params">,
  fields: Readonly<Record<string, unknown>>,
  responseSchema?: GenerateRequest["responseSchema"],
): BuiltRequest {
  return requestBuilder(job, responseSchema)(fields);
}

/**
 * {@link buildRequest} bound to a job: what the job's prompt needs is worked out once, not for
 * every row (a sync run builds one request per row).
 */
export function requestBuilder(
  job: Pick<JobSpec, "prompt" | "model" | "params">,
  responseSchema?: GenerateRequest["responseSchema"],
): (fields: Readonly<Record<string, unknown>>) => BuiltRequest {
  const prompt = job.prompt;
  const columns = promptColumns(prompt);
  const template = prompt?.template;
  const column = prompt?.column ?? DEFAULT_PROMPT_COLUMN;
  const systemTemplate = prompt?.system;
  return (fields) => {
    for (const c of columns) {
      if (!(c in fields)) {
        const missing = columns.filter((c) => !(c in fields));
        return { error: `row has no ${missing.map((c) => `"${c}"`).join(", ")} field` };
      }
    }
    const content = template !== undefined
      ? renderTemplate(template, fields)
      : text(fields[column]);
    if (content.trim() === "") return { error: "empty prompt: nothing was sent" };
    const system = systemTemplate === undefined
      ? undefined
      : renderTemplate(systemTemplate, fields);
    // Members in the order they always had; no spreads of throw-away objects.
    const messages: ChatMessage[] = [{ role: "user", content }];
    const params = { ...job.params };
    const request: { -readonly [K in keyof GenerateRequest]: GenerateRequest[K] } = system
      ? { model: job.model, system, messages, params }
      : { model: job.model, messages, params };
    if (responseSchema) request.responseSchema = responseSchema;
    return { request };
  };
}
