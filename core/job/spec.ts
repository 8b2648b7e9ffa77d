/**
 * The job file's types, spelled out. `schema.ts` stays the single source of truth: JSR's fast
 * types cannot infer a type from a valibot schema, so the public API takes these instead, and the
 * check at the bottom stops type-checking the moment they and the schema disagree.
 * @module
 */
import type * as v from "valibot";
import { JobSchema as inferred } from "./schema.ts";

/** `dataset:` where the rows come from. */
export interface DatasetSpec {
  /** Input file, relative to the job file. */
  path: string;
  /** Format name, when the extension does not say it. */
  format?: string;
  /** Column holding each row's id (default `id` when the dataset has one). */
  id?: string;
  /** Options for the format plugin. */
  options?: Record<string, unknown>;
}

/** `prompt:` how each row becomes a request (`column` or `template`, not both). */
export interface PromptSpec {
  /** Column whose value is the prompt (default `prompt`). */
  column?: string;
  /** Template: `{{column}}` is replaced by the row's value. */
  template?: string;
  /** System prompt; may use `{{column}}` too. */
  system?: string;
}

/** `params:` generation parameters; keys beyond these pass through to the provider. */
export interface ParamsSpec {
  temperature?: number;
  max_tokens?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  [key: string]: unknown;
}

/** `output:` where and how the merged rows are written. */
export interface OutputSpec {
  /** Output file, relative to the job file. */
  path?: string;
  /** Add llm_provider and llm_model columns. */
  with_meta?: boolean;
  /** Add the finish reason and token count columns. */
  with_usage?: boolean;
}

/** `sync:` settings of live (non-batch) runs. */
export interface SyncSpec {
  /** Concurrent requests. */
  workers?: number;
  /** Use the response cache. */
  cache?: boolean;
  /** Requests per minute never to exceed. */
  rpm?: number;
  /** Tokens per minute never to exceed. */
  tpm?: number;
}

/** `batch:` settings of batch runs. */
export interface BatchSpec {
  /** Most requests per provider batch. */
  max_requests?: number;
  /** Most bytes of requests per provider batch. */
  max_bytes?: number;
}

/** `cost:` prices and the spend cap. */
export interface CostSpec {
  /** Spend cap in US dollars: a run estimated above it refuses to start. */
  max_usd?: number;
  /** This model's prices in US dollars per million tokens, instead of Loom's table. */
  prices?: { input: number; output: number; batch_input?: number; batch_output?: number };
}

/** A job as written (after validation). */
export interface JobSpec {
  dataset: DatasetSpec;
  prompt?: PromptSpec;
  /** Provider plugin name. */
  provider: string;
  /** Options passed to the provider plugin. */
  provider_options?: Record<string, unknown>;
  /** Model id, as the provider names it. */
  model: string;
  mode?: "batch" | "sync";
  params?: ParamsSpec;
  /** JSON Schema the answer must match: inline, or the path of a .json/.yaml file. */
  schema?: string | Record<string, unknown>;
  output?: OutputSpec;
  sync?: SyncSpec;
  batch?: BatchSpec;
  cost?: CostSpec;
  /** Third-party plugins: paths relative to the job file, or package names. */
  plugins?: string[];
}

/** The job file schema (valibot): `v.parse(JobSchema, input)` gives a {@link JobSpec}. */
export const JobSchema: v.GenericSchema<unknown, JobSpec> = inferred;

// Types compared member by member, intersections flattened: true only when both say the same.
type Flat<T> = T extends object ? { [K in keyof T]: Flat<T[K]> } : T;
type Same<A, B> = (<T>() => T extends Flat<A> ? 1 : 2) extends <T>() => T extends Flat<B> ? 1 : 2
  ? true
  : false;
// A type error here means JobSpec above no longer says what the schema in schema.ts accepts.
const _spelledOut: Same<v.InferOutput<typeof inferred>, JobSpec> = true;
