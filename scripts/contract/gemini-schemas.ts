/**
 * JSON Schemas of our own for the Gemini REST messages Loom uses, written from the published
 * protos (googleapis/googleapis `google/ai/generativelanguage/v1beta/generative_service.proto`,
 * `content.proto`, `file.proto`; the batch resource from the API reference `ai.google.dev/api/batch-mode`,
 * whose protos are not published) with the proto3 JSON mapping:
 * - field names in lowerCamelCase (the json_name); objects are closed, because Google's JSON
 *   front end refuses unknown names (400 `Invalid JSON payload received. Unknown name "…"`);
 * - int32 as JSON numbers, int64 as decimal strings (answers; a parser also takes numbers, so
 *   requests may send either), bytes as base64, Timestamps as RFC 3339, enums by name;
 * - `google.protobuf.Struct`/`Value` fields (a JSON schema, request metadata) are open.
 * Requests accept only camelCase names: stricter than the API, which also takes the proto names.
 * @module
 */

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/$defs/${name}` });
const closed = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  ...(required.length ? { required } : {}),
  additionalProperties: false,
});
const array = (items: Schema): Schema => ({ type: "array", items });
const str: Schema = { type: "string" };
const bool: Schema = { type: "boolean" };
const num: Schema = { type: "number" };
const enumOf = (...values: string[]): Schema => ({ type: "string", enum: values });
/** Exactly one of a proto `oneof` (or none, when `optional`). */
const oneOf = (names: string[]): Schema => ({
  not: { anyOf: names.flatMap((a, i) => names.slice(i + 1).map((b) => ({ required: [a, b] }))) },
});

const MODALITY = enumOf("MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "VIDEO", "AUDIO", "DOCUMENT");

/** Every message, under `$defs`. */
export const GEMINI_SCHEMAS: Schema = {
  $defs: {
    // --- scalars in proto3 JSON
    Int32: { type: "integer", minimum: -2147483648, maximum: 2147483647 },
    /** A request's int32: a parser accepts a number or a decimal string. */
    Int32In: { anyOf: [ref("Int32"), { type: "string", pattern: "^-?\\d+$" }] },
    Int64Out: { type: "string", pattern: "^-?\\d+$" },
    Int64In: { anyOf: [{ type: "integer" }, { type: "string", pattern: "^-?\\d+$" }] },
    Timestamp: { type: "string", format: "date-time" },
    Bytes: { type: "string", pattern: "^[A-Za-z0-9+/_-]*={0,2}$" },
    /** `google.rpc.Status`: details are `Any`s, each naming its `@type`. */
    Status: closed({
      code: ref("Int32"),
      message: str,
      details: array({ type: "object", required: ["@type"] }),
    }),

    // --- content.proto
    Blob: closed({ mimeType: str, data: ref("Bytes") }, ["mimeType", "data"]),
    FileData: closed({ mimeType: str, fileUri: str }, ["fileUri"]),
    Part: {
      ...closed({
        text: str,
        inlineData: ref("Blob"),
        fileData: ref("FileData"),
        functionCall: { type: "object" },
        functionResponse: { type: "object" },
        executableCode: { type: "object" },
        codeExecutionResult: { type: "object" },
        thought: bool,
        thoughtSignature: ref("Bytes"),
        videoMetadata: { type: "object" },
        partMetadata: { type: "object" },
        mediaResolution: { type: "object" },
      }),
      allOf: [
        oneOf([
          "text",
          "inlineData",
          "fileData",
          "functionCall",
          "functionResponse",
          "executableCode",
          "codeExecutionResult",
        ]),
      ],
    },
    Content: closed({ parts: array(ref("Part")), role: str }),
    SafetySetting: closed({ category: str, threshold: str }, ["category", "threshold"]),
    ThinkingConfig: closed({
      includeThoughts: bool,
      thinkingBudget: ref("Int32In"),
      thinkingLevel: str,
    }),
    /**
     * The proto: a response schema needs `response_mime_type`; `response_json_schema` is "an
     * alternative to `response_schema`" and "If set, `response_schema` must be omitted".
     */
    GenerationConfig: {
      allOf: [
        ref("GenerationConfigFields"),
        {
          dependentRequired: {
            responseSchema: ["responseMimeType"],
            responseJsonSchema: ["responseMimeType"],
            _responseJsonSchema: ["responseMimeType"],
          },
        },
        oneOf(["responseSchema", "responseJsonSchema", "_responseJsonSchema"]),
      ],
    },
    GenerationConfigFields: closed({
      candidateCount: ref("Int32In"),
      stopSequences: array(str),
      maxOutputTokens: ref("Int32In"),
      temperature: num,
      topP: num,
      topK: ref("Int32In"),
      seed: ref("Int32In"),
      responseMimeType: str,
      responseSchema: { type: "object" },
      _responseJsonSchema: {},
      responseJsonSchema: {},
      presencePenalty: num,
      frequencyPenalty: num,
      responseLogprobs: bool,
      logprobs: ref("Int32In"),
      enableEnhancedCivicAnswers: bool,
      responseModalities: array(MODALITY),
      speechConfig: { type: "object" },
      thinkingConfig: ref("ThinkingConfig"),
      imageConfig: { type: "object" },
      mediaResolution: enumOf(
        "MEDIA_RESOLUTION_UNSPECIFIED",
        "MEDIA_RESOLUTION_LOW",
        "MEDIA_RESOLUTION_MEDIUM",
        "MEDIA_RESOLUTION_HIGH",
      ),
    }),

    // --- generative_service.proto: requests
    /** The body of `models/{model}:generateContent`: `model` comes from the URL. */
    GenerateContentBody: closed({
      model: str,
      systemInstruction: ref("Content"),
      contents: array(ref("Content")),
      tools: array({ type: "object" }),
      toolConfig: { type: "object" },
      safetySettings: array(ref("SafetySetting")),
      generationConfig: ref("GenerationConfig"),
      cachedContent: str,
    }, ["contents"]),
    /** A GenerateContentRequest inside another message: `model` is REQUIRED and no URL supplies it. */
    GenerateContentRequest: {
      allOf: [ref("GenerateContentBody"), { required: ["model", "contents"] }],
    },
    CountTokensRequest: {
      ...closed({
        model: str,
        contents: array(ref("Content")),
        generateContentRequest: ref("GenerateContentRequest"),
      }),
      // "You can either send Model + Contents or a generate_content_request, but never both."
      allOf: [oneOf(["contents", "generateContentRequest"])],
    },

    // --- generative_service.proto: answers
    ModalityTokenCount: closed({ modality: MODALITY, tokenCount: ref("Int32") }),
    UsageMetadata: closed({
      promptTokenCount: ref("Int32"),
      cachedContentTokenCount: ref("Int32"),
      candidatesTokenCount: ref("Int32"),
      toolUsePromptTokenCount: ref("Int32"),
      thoughtsTokenCount: ref("Int32"),
      totalTokenCount: ref("Int32"),
      promptTokensDetails: array(ref("ModalityTokenCount")),
      cacheTokensDetails: array(ref("ModalityTokenCount")),
      candidatesTokensDetails: array(ref("ModalityTokenCount")),
      toolUsePromptTokensDetails: array(ref("ModalityTokenCount")),
    }),
    SafetyRating: closed({ category: str, probability: str, blocked: bool }),
    Candidate: closed({
      index: ref("Int32"),
      content: ref("Content"),
      finishReason: enumOf(
        "FINISH_REASON_UNSPECIFIED",
        "STOP",
        "MAX_TOKENS",
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_OTHER",
        "NO_IMAGE",
        "IMAGE_RECITATION",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
      ),
      finishMessage: str,
      safetyRatings: array(ref("SafetyRating")),
      citationMetadata: { type: "object" },
      tokenCount: ref("Int32"),
      groundingAttributions: array({ type: "object" }),
      groundingMetadata: { type: "object" },
      avgLogprobs: num,
      logprobsResult: { type: "object" },
      urlContextMetadata: { type: "object" },
    }),
    GenerateContentResponse: closed({
      candidates: array(ref("Candidate")),
      promptFeedback: closed({
        blockReason: enumOf(
          "BLOCK_REASON_UNSPECIFIED",
          "SAFETY",
          "OTHER",
          "BLOCKLIST",
          "PROHIBITED_CONTENT",
          "IMAGE_SAFETY",
        ),
        safetyRatings: array(ref("SafetyRating")),
      }),
      usageMetadata: ref("UsageMetadata"),
      modelVersion: str,
      responseId: str,
    }),
    CountTokensResponse: closed({
      totalTokens: ref("Int32"),
      cachedContentTokenCount: ref("Int32"),
      promptTokensDetails: array(ref("ModalityTokenCount")),
      cacheTokensDetails: array(ref("ModalityTokenCount")),
    }),
    /** Every error answer: `{ error: { code, message, status, details } }`. */
    ErrorResponse: closed({
      error: closed({
        code: ref("Int32"),
        message: str,
        status: str,
        details: array({ type: "object", required: ["@type"] }),
      }, [
        "code",
        "message",
      ]),
    }, ["error"]),

    // --- file.proto / file_service.proto
    File: closed({
      name: str,
      displayName: str,
      mimeType: str,
      sizeBytes: ref("Int64Out"),
      createTime: ref("Timestamp"),
      updateTime: ref("Timestamp"),
      expirationTime: ref("Timestamp"),
      sha256Hash: ref("Bytes"),
      uri: str,
      downloadUri: str,
      state: enumOf("STATE_UNSPECIFIED", "PROCESSING", "ACTIVE", "FAILED"),
      source: enumOf("SOURCE_UNSPECIFIED", "UPLOADED", "GENERATED", "REGISTERED"),
      error: ref("Status"),
      videoMetadata: { type: "object" },
    }),
    /** The start of a resumable upload: `CreateFileRequest`, whose output-only fields a client may leave out. */
    CreateFileRequest: closed({
      file: closed({
        name: str,
        displayName: str,
        mimeType: str,
        sizeBytes: ref("Int64In"),
        source: str,
      }),
    }),
    CreateFileResponse: closed({ file: ref("File") }, ["file"]),
    ListFilesResponse: closed({ files: array(ref("File")), nextPageToken: str }),

    // --- batches (API reference: models.batchGenerateContent, batches.*)
    InlinedRequest: closed({ request: ref("GenerateContentBody"), metadata: { type: "object" } }, [
      "request",
    ]),
    InputConfig: {
      ...closed({
        fileName: str,
        requests: closed({ requests: array(ref("InlinedRequest")) }, ["requests"]),
      }),
      allOf: [oneOf(["fileName", "requests"]), {
        anyOf: [{ required: ["fileName"] }, { required: ["requests"] }],
      }],
    },
    BatchStats: closed({
      requestCount: ref("Int64Out"),
      successfulRequestCount: ref("Int64Out"),
      failedRequestCount: ref("Int64Out"),
      pendingRequestCount: ref("Int64Out"),
    }),
    InlinedResponse: {
      ...closed({
        response: ref("GenerateContentResponse"),
        error: ref("Status"),
        metadata: { type: "object" },
      }),
      allOf: [oneOf(["response", "error"])],
    },
    GenerateContentBatchOutput: {
      ...closed({
        responsesFile: str,
        inlinedResponses: closed({ inlinedResponses: array(ref("InlinedResponse")) }),
      }),
      allOf: [oneOf(["responsesFile", "inlinedResponses"])],
    },
    BatchState: enumOf(
      "BATCH_STATE_UNSPECIFIED",
      "BATCH_STATE_PENDING",
      "BATCH_STATE_RUNNING",
      "BATCH_STATE_SUCCEEDED",
      "BATCH_STATE_FAILED",
      "BATCH_STATE_CANCELLED",
      "BATCH_STATE_EXPIRED",
    ),
    /** The batch as a client sends it: displayName and inputConfig are REQUIRED, the rest output only. */
    GenerateContentBatchIn: closed({
      model: str,
      displayName: str,
      inputConfig: ref("InputConfig"),
      priority: ref("Int64In"),
    }, [
      "displayName",
      "inputConfig",
    ]),
    BatchGenerateContentRequest: closed({ batch: ref("GenerateContentBatchIn") }, ["batch"]),
    /** The batch as the API describes it, in an Operation's `metadata` (with the `Any`'s `@type`). */
    GenerateContentBatch: closed({
      "@type": str,
      name: str,
      model: str,
      displayName: str,
      inputConfig: ref("InputConfig"),
      output: ref("GenerateContentBatchOutput"),
      createTime: ref("Timestamp"),
      endTime: ref("Timestamp"),
      updateTime: ref("Timestamp"),
      batchStats: ref("BatchStats"),
      state: ref("BatchState"),
      priority: ref("Int64Out"),
    }),
    /** `google.longrunning.Operation`: `error` and `response` are its result oneof. */
    Operation: {
      ...closed({
        name: str,
        metadata: ref("GenerateContentBatch"),
        done: bool,
        error: ref("Status"),
        response: { type: "object", required: ["@type"] },
      }),
      allOf: [oneOf(["error", "response"])],
    },
    ListOperationsResponse: closed({ operations: array(ref("Operation")), nextPageToken: str }),
    Empty: closed({}),

    // --- batch files (API reference, "input file" / "output file" of batch mode)
    BatchInputLine: closed({ key: str, request: ref("GenerateContentBody") }, ["key", "request"]),
    /** unverified: the error line's shape (`{key, error: Status}`) is inferred from the inline `InlinedResponse`. */
    BatchOutputLine: {
      ...closed({ key: str, response: ref("GenerateContentResponse"), error: ref("Status") }),
      allOf: [oneOf(["response", "error"]), {
        anyOf: [{ required: ["response"] }, { required: ["error"] }],
      }],
    },
  },
};
