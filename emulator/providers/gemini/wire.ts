/**
 * The JSON shapes the Gemini emulator answers with, typed against `@google/genai`'s own types
 * where they describe the wire JSON (type-only imports: the emulator never loads the SDK), and
 * after the published protos (`google/ai/generativelanguage/v1beta/*.proto`) where the SDK's
 * types describe something else (its mapped BatchJob, a CountTokensResponse without
 * `promptTokensDetails`). Builders declare these as return types or check with `satisfies`, so the
 * compiler catches a field the SDK would not read or a value outside an enum.
 * @module
 */
import type {
  CountTokensResponse,
  File,
  FinishReason,
  GenerateContentResponse,
  ModalityTokenCount,
} from "@google/genai";

/**
 * A type as JSON carries it: the SDK's string enums become their string values (the wire has
 * `"STOP"`, not `FinishReason.STOP`), recursively through arrays and objects.
 */
export type Wire<T> = T extends string ? `${T}`
  : T extends ReadonlyArray<infer U> ? Wire<U>[]
  : T extends object ? { -readonly [K in keyof T]: Wire<T[K]> }
  : T;

/** A finish reason as JSON spells it. */
export type FinishReasonJson = `${FinishReason}`;

/**
 * A `GenerateContentResponse` as JSON: the SDK class's data fields (not its getters, and not
 * `sdkHttpResponse` or `automaticFunctionCallingHistory`, which the SDK adds itself).
 */
export type GeminiResponseJson = Wire<
  Pick<
    GenerateContentResponse,
    "candidates" | "usageMetadata" | "modelVersion" | "responseId" | "promptFeedback"
  >
>;

/**
 * A `CountTokensResponse` as JSON. The SDK's type keeps `totalTokens` and
 * `cachedContentTokenCount`; the proto (generative_service.proto `CountTokensResponse`) also has
 * `promptTokensDetails` and `cacheTokensDetails` (repeated `ModalityTokenCount`).
 */
export type CountTokensJson =
  & Wire<Pick<CountTokensResponse, "totalTokens" | "cachedContentTokenCount">>
  & {
    promptTokensDetails?: Wire<ModalityTokenCount>[];
    cacheTokensDetails?: Wire<ModalityTokenCount>[];
  };

/**
 * A `google.rpc.Status` as JSON (google/rpc/status.proto): `code` is a `google.rpc.Code` number
 * (3 INVALID_ARGUMENT, 1 CANCELLED, …), not an HTTP status; `details` are `Any`s, each with its
 * `@type`. This is what an Operation's `error` and a batch response's `error` hold. (The HTTP
 * error envelope `{error: {code: <HTTP status>, message, status, details}}` is another shape.)
 */
export interface RpcStatusJson {
  code: number;
  message: string;
  details?: Array<{ "@type": string; [field: string]: unknown }>;
}

/** `BatchState` (generativelanguage v1beta batch proto) as JSON spells it. */
export type BatchStateJson =
  | "BATCH_STATE_UNSPECIFIED"
  | "BATCH_STATE_PENDING"
  | "BATCH_STATE_RUNNING"
  | "BATCH_STATE_SUCCEEDED"
  | "BATCH_STATE_FAILED"
  | "BATCH_STATE_CANCELLED"
  | "BATCH_STATE_EXPIRED";

/** `BatchStats`: int64 counts, so JSON strings; proto3 leaves zeros out. */
export interface BatchStatsJson {
  requestCount?: string;
  successfulRequestCount?: string;
  failedRequestCount?: string;
  pendingRequestCount?: string;
}

/** One `InlinedResponse`: the request's `metadata` back, and a `response` or an `error`. */
export interface InlinedResponseJson {
  metadata?: Record<string, unknown>;
  response?: GeminiResponseJson;
  error?: RpcStatusJson;
}

/** `GenerateContentBatchOutput`: `responsesFile` or `inlinedResponses` (a wrapper holding a list). */
export type BatchOutputJson =
  | { responsesFile: string; inlinedResponses?: never }
  | { inlinedResponses: { inlinedResponses: InlinedResponseJson[] }; responsesFile?: never };

/** A `GenerateContentBatch` resource, as an Operation's `metadata` carries it (with its `@type`). */
export interface BatchJson {
  "@type": string;
  model: string;
  name: string;
  displayName?: string;
  inputConfig?: { fileName: string };
  output?: BatchOutputJson;
  createTime: string;
  updateTime: string;
  endTime?: string;
  batchStats: BatchStatsJson;
  state: BatchStateJson;
}

/**
 * A `google.longrunning.Operation` for a batch (google/longrunning/operations.proto): `done` left
 * out while false; once done, exactly one of `response` (the output, with its `@type`) or `error`.
 */
export interface BatchOperationJson {
  name: string;
  metadata: BatchJson;
  done?: true;
  response?: { "@type": string } & BatchOutputJson;
  error?: RpcStatusJson;
}

/** One line of a batch's responses file: the input line's `key`, then a response or an error. */
export interface ResponseLineJson extends InlinedResponseJson {
  key?: string;
}

/**
 * A `File` resource as JSON: the SDK's File (string enums as strings), plus `sha256Hash`, which
 * the proto (file.proto, bytes, so base64) has and the SDK's type leaves out.
 */
export type FileJson = Wire<Omit<File, "videoMetadata" | "error">> & { sha256Hash?: string };
