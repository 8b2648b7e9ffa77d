/**
 * What a job sent for each row, for the rows page (the rendered prompt) and a row's detail (the
 * whole request): built again from the job's spec and the row's own columns by Loom's one request
 * builder, so it is what every mode sends. A file given by path has no job, so no request. The
 * spec never holds a key.
 * @module
 */
import type { JobRecord } from "../../core/batch/store.ts";
import { requestBuilder } from "../../core/data/request.ts";

/** The request of one row as the viewer shows it, or why the row was never sent. */
export type ShownRequest =
  | {
    readonly model: string;
    readonly system?: string;
    /** The user message: the row's prompt, rendered. */
    readonly prompt: string;
    readonly params: Readonly<Record<string, unknown>>;
    /** Whether the job asked for an answer matching a JSON Schema (the job file names it). */
    readonly schema: boolean;
  }
  | { readonly error: string };

/** Characters of a prompt a page of rows carries (a row's detail has it whole). */
const PAGE_PROMPT_CHARS = 1000;

/** The function giving each row's request for `job`, or undefined without a job. */
export function requestsOf(
  job: JobRecord | undefined,
): ((fields: Readonly<Record<string, unknown>>, whole?: boolean) => ShownRequest) | undefined {
  if (!job) return undefined;
  const build = requestBuilder(job.spec);
  const schema = job.spec.schema !== undefined;
  return (fields, whole = false) => {
    const built = build(fields);
    if ("error" in built) return { error: built.error };
    const { model, system, messages, params } = built.request;
    const prompt = messages.map((m) => m.content).join("\n");
    return {
      model,
      ...(system === undefined ? {} : { system }),
      prompt: whole ? prompt : prompt.slice(0, PAGE_PROMPT_CHARS),
      params: params ?? {},
      schema,
    };
  };
}
