/**
 * Loom's provider-neutral request as an OpenAI Chat Completions body, and a Chat Completion as
 * Loom's answer. One builder and one parser, so sync calls and batch files send exactly the same
 * thing and read answers alike.
 * @module
 */
import type {
  GenerateParams,
  GenerateRequest,
  GenerateResult,
  ParamProblem,
  ParamsContext,
} from "../../../core/spec/provider.ts";
import { commonParamProblems } from "../_shared/params.ts";
import { sentSchema, strictVerdict } from "./strict.ts";

/**
 * OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 and their dated versions, but not the
 * `-chat` variants) accept only the default sampling and refuse other values with a 400.
 */
export function isReasoningModel(model: string): boolean {
  return /^(o\d+|gpt-5(\.\d+)?)([-.]|$)/.test(model) && !model.includes("-chat");
}

/**
 * Parameters reasoning models refuse outright, whatever the value: `stop`, which the OpenAPI
 * definition says o3 and o4-mini refuse (StopConfiguration), and the penalties, log
 * probabilities and `logit_bias`, observed refused by o1 and o3-mini (a parameter table on
 * community.openai.com, t/1110750; the definition defers to the reasoning guide, not stored).
 * unverified: the same refusals by the gpt-5 family, and `stop` by o1 and gpt-5; refused here
 * for every reasoning model, so a batch never pays to find out.
 */
export const REASONING_REFUSED_PARAMS: readonly string[] = [
  "stop",
  "presence_penalty",
  "frequency_penalty",
  "logprobs",
  "top_logprobs",
  "logit_bias",
];

/** Problems of a Chat Completions job: the shared ones, plus OpenAI's per-model rules when `models` is on. */
export function chatParamProblems(
  params: GenerateParams,
  context: ParamsContext,
  models: boolean,
): ParamProblem[] {
  const problems = commonParamProblems(params, context, {
    count: "n",
    schemaParam: "response_format",
  });
  if (!models) return problems;
  if (isReasoningModel(context.model)) {
    for (const param of ["temperature", "top_p"]) {
      if (params[param] !== undefined && params[param] !== 1) {
        problems.push({
          param,
          message:
            `${context.model} is a reasoning model and accepts only the default ${param} (1); remove it from params`,
        });
      }
    }
    for (const param of REASONING_REFUSED_PARAMS) {
      if (params[param] !== undefined && params[param] !== null) {
        problems.push({
          param,
          message:
            `${context.model} is a reasoning model and does not support ${param}; remove it from params`,
        });
      }
    }
  } else if (params.reasoning_effort !== undefined && /^gpt-[34]/.test(context.model)) {
    problems.push({
      param: "reasoning_effort",
      message: `${context.model} is not a reasoning model; remove reasoning_effort from params`,
    });
  }
  return problems;
}

/** The `json_schema.name` OpenAI requires: the schema's title where it fits the pattern. */
function schemaName(schema: Readonly<Record<string, unknown>>): string {
  const title = typeof schema.title === "string"
    ? schema.title.replace(/[^a-zA-Z0-9_-]+/g, "_").slice(0, 64)
    : "";
  return /[a-zA-Z0-9]/.test(title) ? title : "answer";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The `response_format` for an answer schema. */
export function responseFormat(schema: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const sent = sentSchema(schema);
  return {
    type: "json_schema",
    json_schema: { name: schemaName(schema), schema: sent, strict: strictVerdict(sent).strict },
  };
}

/**
 * The request field that carries the token cap: OpenAI's `max_completion_tokens`, or the older
 * `max_tokens` that OpenRouter documents and compatible servers (Ollama, llama.cpp) read.
 */
export type MaxTokensField = "max_tokens" | "max_completion_tokens";

/** The Chat Completions body for a request; the cap goes in `maxTokensField` (default `max_completion_tokens`). */
export function chatCompletionBody(
  request: GenerateRequest,
  maxTokensField: MaxTokensField = "max_completion_tokens",
): Record<string, unknown> {
  const { max_tokens, ...params } = request.params;
  const messages = [
    ...(request.system ? [{ role: "system", content: request.system }] : []),
    ...request.messages.map((m) => ({ role: m.role, content: m.content })),
  ];
  return {
    model: request.model,
    messages,
    ...params,
    // OpenAI deprecates `max_tokens` and its reasoning models refuse it; other servers may read only it.
    ...(max_tokens === undefined ? {} : { [maxTokensField]: max_tokens }),
    ...(request.responseSchema ? { response_format: responseFormat(request.responseSchema) } : {}),
  };
}

/** The parts of a Chat Completion (`chat.completion`) Loom reads; a parsed batch result line fits it too. */
export interface ChatCompletionLike {
  readonly choices?:
    | ReadonlyArray<
      {
        readonly finish_reason?: string | null;
        readonly message?:
          | { readonly content?: string | null; readonly refusal?: string | null }
          | null;
      } | null
    >
    | null;
  readonly model?: string | null;
  readonly usage?: {
    readonly prompt_tokens?: number;
    /** Billed output: the answer and the reasoning together. */
    readonly completion_tokens?: number;
    readonly completion_tokens_details?: { readonly reasoning_tokens?: number | null } | null;
    /** What the request cost in US dollars (OpenRouter's credits of one dollar); OpenAI sends none. */
    readonly cost?: number | null;
  } | null;
}

/**
 * A Chat Completion as Loom's answer: the first choice's text, why it stopped, a refusal, token
 * counts (reasoning tokens included in the output, as billed, and reported apart as well), the
 * cost where the server reports one (OpenRouter's `usage.cost`) and the model the API says
 * answered.
 */
export function chatCompletionResult(completion: ChatCompletionLike): GenerateResult {
  const choice = completion.choices?.[0];
  const refusal = choice?.message?.refusal;
  const reasoning = completion.usage?.completion_tokens_details?.reasoning_tokens;
  const cost = completion.usage?.cost;
  return {
    text: choice?.message?.content ?? "",
    finishReason: choice?.finish_reason ?? undefined,
    ...(choice?.finish_reason === "length" ? { truncated: true } : {}),
    ...(typeof refusal === "string" && refusal ? { refusal } : {}),
    usage: {
      inputTokens: completion.usage?.prompt_tokens,
      outputTokens: completion.usage?.completion_tokens,
      ...(typeof reasoning === "number" ? { reasoningTokens: reasoning } : {}),
      // A cost that is no amount (a string, a negative or infinite number) is not one.
      ...(typeof cost === "number" && Number.isFinite(cost) && cost >= 0 ? { cost } : {}),
    },
    ...(typeof completion.model === "string" && completion.model
      ? { model: completion.model }
      : {}),
  };
}

/**
 * A Chat Completions object field in the Responses API's flat form: `{type, [type]: {…}}` becomes
 * `{type, …}` (a `function` tool or tool choice, a `custom` tool, `allowed_tools`); anything else
 * is kept as it is.
 */
function flattened(value: unknown): unknown {
  if (!isObject(value) || typeof value.type !== "string" || !isObject(value[value.type])) {
    return value;
  }
  const { [value.type]: inner, ...rest } = value;
  return { ...rest, ...(inner as Record<string, unknown>) };
}

/**
 * The body of `POST /v1/responses/input_tokens` for a request: the {@link chatCompletionBody}
 * sync calls send, in the Responses API's shape, so the count covers what generation would be
 * sent. The messages (the system prompt first, as a `system` message, just as Chat Completions
 * gets it) become `input`; the answer schema (`response_format`) becomes `text.format`;
 * `reasoning_effort` becomes `reasoning.effort`; tools, tool choice and `parallel_tool_calls`
 * carry over (flattened to the Responses form). Sampling and output limits do not change the
 * input and the endpoint refuses them, so they are left out.
 */
export function inputTokensBody(request: GenerateRequest): Record<string, unknown> {
  const body = chatCompletionBody(request);
  const messages = body.messages as ReadonlyArray<{ role: string; content: string }>;
  const format = body.response_format;
  return {
    model: body.model,
    input: messages.map((m) => ({ role: m.role, content: m.content })),
    ...(format === undefined ? {} : { text: { format: flattened(format) } }),
    ...(body.reasoning_effort === undefined
      ? {}
      : { reasoning: { effort: body.reasoning_effort } }),
    ...(Array.isArray(body.tools) ? { tools: body.tools.map(flattened) } : {}),
    ...(body.tool_choice === undefined ? {} : { tool_choice: flattened(body.tool_choice) }),
    ...(body.parallel_tool_calls === undefined
      ? {}
      : { parallel_tool_calls: body.parallel_tool_calls }),
  };
}
