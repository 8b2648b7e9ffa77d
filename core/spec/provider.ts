/**
 * The provider plugin contract, version 1. A provider turns one {@link GenerateRequest} into one
 * answer. The same request object serves sync calls and (later) batch submissions, so both modes
 * send the same parameters.
 * @module
 */

/** One chat message. */
export interface ChatMessage {
  readonly role: "user" | "assistant";
  readonly content: string;
}

/** Generation parameters from the job's `params` (provider-specific keys pass through as is). */
export interface GenerateParams {
  readonly temperature?: number;
  readonly max_tokens?: number;
  readonly top_p?: number;
  readonly stop?: string | readonly string[];
  readonly seed?: number;
  readonly [key: string]: unknown;
}

/** A fully rendered request for one row, independent of any provider's wire format. */
export interface GenerateRequest {
  readonly model: string;
  readonly system?: string;
  readonly messages: readonly ChatMessage[];
  readonly params: GenerateParams;
  /**
   * A JSON Schema the answer must match (the job's `schema`). Providers send it in their native
   * form (OpenAI `response_format`, Anthropic `output_config.format`, Gemini
   * `responseJsonSchema`); the core parses and checks the answer against it.
   */
  readonly responseSchema?: Readonly<Record<string, unknown>>;
}

/** Token counts a provider reported. */
export interface Usage {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
}

/** A provider's answer to one request. */
export interface GenerateResult {
  /** The answer text. */
  readonly text: string;
  /** Why generation stopped, in the provider's words (`stop`, `length`, `end_turn`, …). */
  readonly finishReason?: string;
  /** Generation stopped at `max_tokens`, so the answer may be incomplete. */
  readonly truncated?: boolean;
  /** The model declined to answer; its explanation (or the reason the provider gave). */
  readonly refusal?: string;
  readonly usage?: Usage;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborted when the run is interrupted; providers pass it to their HTTP client. */
  readonly signal?: AbortSignal;
}

/** What a provider can do. */
export interface ProviderCapabilities {
  /** Answers one request at a time (`generate`). */
  readonly sync: boolean;
  /** Has a batch API. */
  readonly batch: boolean;
  /** Can count input tokens. */
  readonly tokens: boolean;
}

/** What parameter checks may depend on besides the parameters. */
export interface ParamsContext {
  readonly model: string;
  /** The job has an answer schema (which the provider sends in its own field). */
  readonly structured: boolean;
}

/** A parameter a provider refuses, and why. */
export interface ParamProblem {
  readonly param: string;
  readonly message: string;
}

/** A provider plugin instance (version 1). */
export interface ProviderV1 {
  readonly specificationVersion: "loom.provider.v1";
  /** Registry name, e.g. `openai`. */
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /** Why batch mode is unavailable, when the provider will never have it (shown as is). */
  readonly noBatchReason?: string;
  /**
   * Extra identity that changes the answer but is not part of the request (an endpoint's base
   * URL, say). It joins the cache key, so two endpoints never share cached answers.
   */
  readonly cacheIdentity?: Readonly<Record<string, string>>;
  /**
   * Checks the job's generation parameters before any work: each problem names the parameter
   * and says why it is refused (the API version in use, or the model, does not accept it, say).
   */
  validateParams?(params: GenerateParams, context: ParamsContext): ReadonlyArray<ParamProblem>;
  /**
   * Answers one request. Throws `LoomProviderError` on failure: `retryable` for transient
   * faults, `fatal` when no row can succeed (bad key). Never puts an API key in a message.
   */
  generate(request: GenerateRequest, options?: CallOptions): Promise<GenerateResult>;
  /** Releases connections. */
  dispose?(): Promise<void>;
}
