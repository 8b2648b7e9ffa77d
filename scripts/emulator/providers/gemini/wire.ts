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
  Pick<GenerateContentResponse, "candidates" | "usageMetadata" | "modelVersion" | "responseId" | "promptFeedback">
>;

/**
 * A `CountTokensResponse` as JSON. The SDK's type keeps `totalTokens` and
 * `cachedContentTokenCount`; the proto (generative_service.proto `CountTokensResponse`) also has
 * `promptTokensDetails` and `cacheTokensDetails` (repeated `ModalityTokenCount`).
 */
export type CountTokensJson =
  & Wire<Pick<CountTokensResponse, "totalTokens" | "cachedContentTokenCount">>
  & { promptTokensDetails?: Wire<ModalityTokenCount>[]; cacheTokensDetails?: Wire<ModalityTokenCount>[] };
