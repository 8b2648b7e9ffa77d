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
  /** Output tokens as billed: the answer and any reasoning (thinking) tokens together. */
  readonly outputTokens?: number;
  /**
   * The part of `outputTokens` the model spent reasoning (OpenAI `reasoning_tokens`, Gemini
   * `thoughtsTokenCount`, Anthropic thinking), where the provider reports it.
   */
  readonly reasoningTokens?: number;
  /**
   * What the provider says this request cost, in US dollars, where it reports it (OpenRouter's
   * `usage.cost`, in credits of one dollar). Loom never computes it: estimates are `loom plan`'s.
   */
  readonly cost?: number;
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
  /**
   * The model that answered, when the provider names it in the answer (a dated snapshot, or
   * another model an OpenRouter fallback routed to); shown in `llm_model` with `with_meta`.
   */
  readonly model?: string;
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

/** One request of a provider batch, with the id that joins its result back to its row. */
export interface BatchItem {
  /** Unique within the batch; matches `^[a-zA-Z0-9_-]{1,64}$` (every provider accepts it). */
  readonly customId: string;
  readonly request: GenerateRequest;
}

/** How much one provider batch may hold. */
export interface BatchLimits {
  readonly maxRequests: number;
  /** Bytes of the serialized batch (input file or request body) the provider accepts. */
  readonly maxBytes: number;
}

/** What Loom saves about a submitted batch (JSON, in the job's state). Never a secret. */
export interface BatchHandle {
  /** The provider's batch id (shown to users; `loom fetch --id` accepts it). */
  readonly id: string;
  /** Anything else the provider needs later: input file id, inline or file mode, … */
  readonly data?: Readonly<Record<string, string | number | boolean | null>>;
}

/** Loom's batch states; every provider's own states map onto these. */
export type BatchState =
  | "validating"
  | "in_progress"
  | "completed"
  | "failed"
  | "expired"
  | "cancelled";

/** A batch's status as the provider reports it. */
export interface BatchStatus {
  readonly state: BatchState;
  /** The provider's own word for it (`finalizing`, `canceling`, `BATCH_STATE_RUNNING`, …). */
  readonly providerState?: string;
  /** Request counts, where the provider gives them. */
  readonly counts?: {
    readonly total?: number;
    readonly succeeded?: number;
    readonly failed?: number;
  };
  /** Why the batch failed, in the provider's words (validation errors, an exhausted queue). */
  readonly message?: string;
}

/**
 * One request's outcome in a finished batch. `kind` says why a request has no answer: it failed
 * (an error for that request), or the batch expired or was cancelled before it ran.
 */
export type BatchOutcome =
  | { readonly customId: string; readonly result: GenerateResult }
  | {
    readonly customId: string;
    readonly error: string;
    readonly kind: "failed" | "expired" | "cancelled";
  };

/** Names one submission, so a batch created just before a crash can be found and adopted. */
export interface BatchLabel {
  /** Loom's job id. */
  readonly job: string;
  /** Shard number within the job. */
  readonly shard: number;
  /** `loom-<job>-<shard>`: for batch metadata, display names and upload file names. */
  readonly name: string;
}

/** A provider's batch API (optional part of a provider). */
export interface BatchApi {
  readonly limits: BatchLimits;
  /** Bytes `item` adds to the serialized batch, exactly as it will be sent (for shard planning). */
  itemBytes(item: BatchItem): number;
  /**
   * Optional: `item` as the provider sends it, one line of its batch file (no newline). With it,
   * `itemBytes(item)` must be this text's UTF-8 length plus one, and the core serializes each
   * item once: it sizes the shards by this line in its planning pass, keeps the lines, and hands
   * them back through {@link BatchItemSource.lines}. Added within `loom.provider.v1`.
   */
  encodeItem?(item: BatchItem): string;
  /**
   * Uploads the items (when the provider takes a file) and creates one batch, labelled so that
   * {@link find} can find it again. Resolves once the provider has accepted it.
   */
  submit(
    items: readonly BatchItem[],
    label: BatchLabel,
    options?: BatchSubmitOptions,
  ): Promise<BatchHandle>;
  /**
   * Optional: {@link submit} with the items streamed instead of held in one array (a shard of
   * 50,000 requests held at once is tens of megabytes). The core uses it when present; a
   * provider that writes its items to a file or body as it reads them should have it. Same
   * contract as `submit`, plus: the items are read to their end before
   * {@link BatchSubmitOptions.onCreate} is called (the core saves the shard's custom ids when the
   * stream ends, and a batch must never exist without them). A wrapper that replaces `submit`
   * must replace or drop this too, or it is bypassed. Added within `loom.provider.v1`.
   */
  submitStream?(
    source: BatchItemSource,
    label: BatchLabel,
    options?: BatchSubmitOptions,
  ): Promise<BatchHandle>;
  /**
   * True when `submit` calls {@link BatchSubmitOptions.onCreate} before the request that creates
   * the batch: a submit that fails without having called it surely created nothing. Without it,
   * every failed submit may have created its batch.
   */
  readonly announcesCreate?: boolean;
  /**
   * Deletes an upload `submit` made (what it gave {@link BatchSubmitOptions.onUploaded}), once
   * its batch has ended and its results are saved, or the shard was given up. Gone already is
   * success.
   */
  deleteUpload?(upload: BatchUpload, options?: CallOptions): Promise<void>;
  /**
   * How a user deletes an upload by hand when Loom could not: a command (`curl -X DELETE …`)
   * that names the key by its environment variable, never its value.
   */
  deleteUploadCommand?(upload: BatchUpload): string;
  /** The batch's current status. */
  status(handle: BatchHandle, options?: CallOptions): Promise<BatchStatus>;
  /**
   * Every outcome of a batch in a terminal state, in any order: answers, failed requests, and
   * requests the batch expired or cancelled before running. A request missing from the results
   * never ran; the core reports it as such. `customIds` are the batch's ids in submission order,
   * for providers whose results may come back without them (Gemini's inline results).
   *
   * Errors say what the core does with the shard: `LoomIncompleteResultsError` (thrown after
   * every readable outcome was yielded) means the results themselves are incomplete, and the
   * core merges what was read, giving the other rows the error's message; a retryable
   * `LoomProviderError` downloads again; any other error fails the fetch and leaves the shard to
   * be read again by the next one (a plugin bug never turns into a partial merge).
   */
  results(
    handle: BatchHandle,
    customIds: readonly string[],
    options?: CallOptions,
  ): AsyncIterable<BatchOutcome>;
  /**
   * Optional: {@link results} in arrays, each the outcomes of a chunk the provider read at once
   * (a million results are then a few thousand steps of the stream instead of a million). The
   * same outcomes and errors as `results`; the core uses it when present. A wrapper that
   * replaces `results` must replace or drop this too, or it is bypassed. Added within
   * `loom.provider.v1`.
   */
  resultChunks?(
    handle: BatchHandle,
    customIds: readonly string[],
    options?: CallOptions,
  ): AsyncIterable<readonly BatchOutcome[]>;
  /** Asks the provider to cancel; resolves once the request is accepted (not once cancelled). */
  cancel(handle: BatchHandle, options?: CallOptions): Promise<void>;
  /**
   * Batches the provider may hold for this label, newest first: how a batch created just before
   * a crash is adopted instead of paid for twice. `exact` is true when the provider labels
   * batches (metadata, display names) and this one carries the label; a provider without labels
   * returns the batches that could be it (created after `hint.after` with `hint.requests`
   * requests), marked inexact, and the user decides. `undefined` means the provider could not
   * look far enough back to tell (Loom then never assumes there is no such batch).
   */
  find?(
    label: BatchLabel,
    hint: BatchFindHint,
    options?: CallOptions,
  ): Promise<Array<{ readonly handle: BatchHandle; readonly exact: boolean }> | undefined>;
}

/** A shard's items for {@link BatchApi.submitStream}: a stream that can be read again. */
export interface BatchItemSource {
  /** How many items {@link BatchItemSource.items} yields. */
  readonly count: number;
  /**
   * The items, in submission order. Each call reads them anew (a retry of a submit whose upload
   * failed reads them again); a stream that finds the input changed throws instead of ending.
   */
  items(): AsyncIterable<BatchItem>;
  /**
   * The same items as {@link BatchApi.encodeItem} wrote them, as UTF-8: each line followed by
   * `\n`, a chunk holding whole lines. A chunk is valid until the next is asked for (they share
   * one buffer): copy what must be kept. Present only for a provider with `encodeItem`, when the
   * core kept the lines of its planning pass; a provider then sends these bytes as they are
   * instead of reading {@link items}. Each call reads them anew. Added within `loom.provider.v1`.
   */
  lines?(): AsyncIterable<Uint8Array>;
}

/** A provider's upload of a batch's input (its file id, say): reused by a retry, deleted once done. */
export type BatchUpload = Readonly<Record<string, string>>;

/** Options of {@link BatchApi.submit}. */
export interface BatchSubmitOptions extends CallOptions {
  /** The upload of these same items by an earlier attempt: used instead of uploading again. */
  readonly upload?: BatchUpload;
  /** Awaited once the items are uploaded (before the create), so the core can record the upload. */
  readonly onUploaded?: (upload: BatchUpload) => Promise<void>;
  /**
   * Awaited just before the request that creates the batch is sent: from then on the batch may
   * exist although no answer comes (a timeout, a reset), and the core never sends it again on its
   * own. See {@link BatchApi.announcesCreate}.
   */
  readonly onCreate?: () => Promise<void>;
}

/** What Loom knows about a submission it may have lost. */
export interface BatchFindHint {
  /** ISO time just before the submission started. */
  readonly after: string;
  /** Requests the batch would hold. */
  readonly requests: number;
  /**
   * The model the batch runs, for a provider whose batches name one (OpenRouter's): a batch of
   * another model is not it. Added within `loom.provider.v1`.
   */
  readonly model?: string;
}

/** What parameter checks may depend on besides the parameters. */
export interface ParamsContext {
  readonly model: string;
  /** The job has an answer schema (which the provider sends in its own field). */
  readonly structured: boolean;
  /** The job's answer schema as the job gives it, when it has one. */
  readonly schema?: Readonly<Record<string, unknown>>;
}

/** A parameter (or the answer schema) a provider refuses, and why. */
export interface ParamProblem {
  /** The parameter's name under `params`; with `path`, a name for the message only. */
  readonly param: string;
  readonly message: string;
  /** Where in the job file the problem is, when not `params.<param>` (`["schema"]`, say). */
  readonly path?: readonly string[];
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
   * What a user should know about how the job will be sent, decided before any work: the
   * structured-output mode a schema gets and why, a model that is deprecated. Each is one
   * sentence; a run shows them once as warnings, and `loom plan` lists them.
   */
  jobNotes?(params: GenerateParams, context: ParamsContext): ReadonlyArray<string>;
  /**
   * Answers one request. Throws `LoomProviderError` on failure: `retryable` for transient
   * faults, `fatal` when no row can succeed (bad key). Never puts an API key in a message.
   */
  generate(request: GenerateRequest, options?: CallOptions): Promise<GenerateResult>;
  /**
   * The `max_tokens` the provider sends when the job sets none (where the API requires one), so
   * the tokens-per-minute limit counts what is really asked for.
   */
  readonly defaultMaxTokens?: number;
  /** The batch API, when the provider has one (`capabilities.batch`). */
  readonly batch?: BatchApi;
  /**
   * Counts the input tokens of a request (system prompt, messages, answer schema where the
   * provider counts it) with the provider's own counting (an endpoint, or a tokenizer that is
   * exact for the model), without generating anything (`capabilities.tokens`). Throws
   * `LoomProviderError` like `generate`.
   */
  countTokens?(request: GenerateRequest, options?: CallOptions): Promise<number>;
  /**
   * Why token counting is unavailable for this provider or model, when it is (shown as is after
   * "Token counting not available: ").
   */
  readonly noTokensReason?: string;
  /** Releases connections. */
  dispose?(): Promise<void>;
}
