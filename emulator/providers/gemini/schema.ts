/**
 * The request messages the emulator reads, as proto3 JSON sees them: every field by its lowerCamel
 * name with its type, so validate.ts can reject unknown names and wrong types the way Google's
 * JSON transcoder does. Field lists follow what `@google/genai` 3.3 can send in Gemini API mode.
 * @module
 */

/** How a field's value is typed. */
export type Kind =
  | "string"
  | "float"
  | "int"
  | "bool"
  /** Any JSON object, not looked into (tools, schemas, …). */
  | "object"
  /** Any JSON value at all. */
  | "json"
  | Message
  | { repeated: Kind };

/** A proto message: its name (for messages) and fields by lowerCamel name. */
export interface Message {
  name: string;
  fields: Record<string, Kind>;
}

const PART: Message = {
  name: "Part",
  fields: {
    text: "string",
    inlineData: "object",
    fileData: "object",
    functionCall: "object",
    functionResponse: "object",
    executableCode: "object",
    codeExecutionResult: "object",
    toolCall: "object",
    toolResponse: "object",
    thought: "bool",
    thoughtSignature: "string",
    videoMetadata: "object",
    mediaResolution: "json",
    partMetadata: "object",
    mediaProcessing: "json",
    speechMetadata: "json",
    audioTranscription: "json",
  },
};

/** The members of Part's `data` oneof: a part must set one of them. */
export const PART_DATA = [
  "text",
  "inlineData",
  "fileData",
  "functionCall",
  "functionResponse",
  "executableCode",
  "codeExecutionResult",
  "toolCall",
  "toolResponse",
];

const CONTENT: Message = {
  name: "Content",
  fields: {
    role: "string",
    parts: { repeated: PART },
    computeControl: "json",
    controlType: "json",
  },
};

const GENERATION_CONFIG: Message = {
  name: "GenerationConfig",
  fields: {
    stopSequences: { repeated: "string" },
    responseMimeType: "string",
    responseSchema: "object",
    responseJsonSchema: "json",
    _responseJsonSchema: "json",
    responseModalities: { repeated: "string" },
    candidateCount: "int",
    maxOutputTokens: "int",
    temperature: "float",
    topP: "float",
    topK: "int",
    seed: "int",
    presencePenalty: "float",
    frequencyPenalty: "float",
    responseLogprobs: "bool",
    logprobs: "int",
    enableEnhancedCivicAnswers: "bool",
    speechConfig: "object",
    thinkingConfig: "object",
    imageConfig: "object",
    mediaResolution: "string",
    audioTranscriptionConfig: "object",
  },
};

/** `GenerateContentRequest`: the body of `:generateContent` and of every batch request. */
export const GENERATE_REQUEST: Message = {
  name: "GenerateContentRequest",
  fields: {
    model: "string",
    contents: { repeated: CONTENT },
    systemInstruction: CONTENT,
    generationConfig: GENERATION_CONFIG,
    tools: { repeated: "object" },
    toolConfig: "object",
    safetySettings: { repeated: "object" },
    cachedContent: "string",
    labels: "object",
    serviceTier: "string",
    store: "bool",
    continuationToken: "json",
  },
};

/** `CountTokensRequest`: contents alone, or a whole generate request. */
export const COUNT_TOKENS_REQUEST: Message = {
  name: "CountTokensRequest",
  fields: {
    contents: { repeated: CONTENT },
    generateContentRequest: GENERATE_REQUEST,
    model: "string",
  },
};

const INLINED_REQUEST: Message = {
  name: "InlinedRequest",
  fields: { request: GENERATE_REQUEST, metadata: "object" },
};

/**
 * `BatchGenerateContentRequest`: `{"batch": GenerateContentBatch}`. Output-only fields are
 * accepted and ignored.
 */
export const BATCH_REQUEST: Message = {
  name: "BatchGenerateContentRequest",
  fields: {
    batch: {
      name: "GenerateContentBatch",
      fields: {
        model: "string",
        name: "string",
        displayName: "string",
        inputConfig: {
          name: "InputConfig",
          fields: {
            fileName: "string",
            requests: {
              name: "InlinedRequests",
              fields: { requests: { repeated: INLINED_REQUEST } },
            },
          },
        },
        output: "object",
        createTime: "string",
        endTime: "string",
        updateTime: "string",
        batchStats: "object",
        state: "string",
        priority: "int",
        webhookConfig: "object",
      },
    },
  },
};

/** One line of a batch input file: `{"key": …, "request": {…}}`. */
export const FILE_LINE: Message = {
  name: "FileLine",
  fields: { key: "json", request: GENERATE_REQUEST, metadata: "json" },
};
