/**
 * Loom's provider-neutral request as an Anthropic Messages body. One builder for sync calls and
 * (later) batch requests.
 * @module
 */
import type { GenerateParams, GenerateRequest } from "../../../core/spec/provider.ts";

/** `max_tokens` is required by the Messages API; this is sent when the job gives none. */
export const DEFAULT_MAX_TOKENS = 1024;

/** Sampling parameters the API version the 1.x SDK sends (2026-10-21) refuses. */
export const REFUSED_PARAMS = ["temperature", "top_p", "top_k"];

/** Problems with a job's parameters, for `validateParams`. */
export function paramProblems(params: GenerateParams): Array<{ param: string; message: string }> {
  return REFUSED_PARAMS.filter((p) => params[p] !== undefined).map((param) => ({
    param,
    message: `the Anthropic API version in use (2026-10-21) does not accept ${param}; remove it from params`,
  }));
}

/** The Messages body for a request. */
export function messagesBody(request: GenerateRequest): Record<string, unknown> {
  const { max_tokens, stop, seed: _seed, ...rest } = request.params;
  return {
    model: request.model,
    max_tokens: max_tokens ?? DEFAULT_MAX_TOKENS,
    ...(request.system ? { system: request.system } : {}),
    messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    ...(stop === undefined ? {} : { stop_sequences: Array.isArray(stop) ? stop : [stop] }),
    ...rest,
  };
}
