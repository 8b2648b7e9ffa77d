/**
 * The sync executor's bookkeeping of calls in flight: identical requests that share one call, and
 * the abort signals handed to calls. Both are per call, so both are kept to a few map operations
 * and no object built for the purpose.
 * @module
 */
import type { GenerateRequest } from "../spec/provider.ts";

interface Pending<A> {
  readonly key: string;
  readonly request: GenerateRequest;
  readonly answer: Promise<A>;
}

/**
 * Calls in flight, so that identical requests at the same time share one call. Found by a key:
 * the request's cache key when the cache is on, else its prompt (the last message's text, a
 * string the row already has); two requests with the same prompt are compared whole, as JSON, so
 * they share a call exactly when their JSON is the same. A key of the prompt saves serializing
 * every request to find the few repeated ones.
 *
 * The calls are a short list (no more than the run's workers), searched in turn. A `Map` keyed
 * by a new string each call (a JSON key, or the prompt itself) measured several times slower on
 * Deno (V8 15) and moved garbage into the old generation there: the heap grew with the rows
 * (1M-row echo run: 10+ mark-compacts, peak 243 MiB; with the list, 1 and 143 MiB).
 * unverified: why; V8's handling of a long-lived map's churn of short-lived string keys is the
 * suspect, not a documented behaviour.
 */
export class CallsInFlight<A> {
  readonly #calls: Pending<A>[] = [];
  readonly #byCacheKey: boolean;

  /** `byCacheKey`: every call has a cache key (the cache is on), which says it all. */
  constructor(byCacheKey: boolean) {
    this.#byCacheKey = byCacheKey;
  }

  /** The key to find `request` by: its cache key, or with the cache off its prompt. */
  keyOf(request: GenerateRequest, cacheKey: string | undefined): string {
    if (this.#byCacheKey) return cacheKey!;
    const { messages } = request;
    return messages.length ? messages[messages.length - 1].content : "";
  }

  /** The answer of a call in flight for the same request as `request`, if there is one. */
  get(key: string, request: GenerateRequest): Promise<A> | undefined {
    const calls = this.#calls;
    for (let i = 0; i < calls.length; i++) {
      const p = calls[i];
      if (p.key.length !== key.length || p.key !== key) continue;
      if (this.#byCacheKey || same(p.request, request)) return p.answer;
    }
    return undefined;
  }

  /** Records a call started for `request`. */
  add(key: string, request: GenerateRequest, answer: Promise<A>): void {
    this.#calls.push({ key, request, answer });
  }

  /** Forgets the call started for `request` (it ended). */
  delete(request: GenerateRequest): void {
    const calls = this.#calls;
    for (let i = 0; i < calls.length; i++) {
      if (calls[i].request !== request) continue;
      calls[i] = calls[calls.length - 1];
      calls.pop();
      return;
    }
  }
}

/** Whether two requests are the same call: the same object, or the same JSON. */
function same(a: GenerateRequest, b: GenerateRequest): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Calls that share one abort signal before the next call gets a fresh one. */
export const CALLS_PER_SIGNAL = 256;

/**
 * The abort signals handed to calls: aborted with the run's signal, never otherwise. Calls take
 * turns on one controller, a fresh one every {@link CALLS_PER_SIGNAL} calls. The run-wide signal
 * itself is not handed out: every call's SDK joins the signal it gets with its own through
 * `AbortSignal.any`, and Node's clean-up of the signals composed from one source costs more the
 * more there were (about 5% of a busy run's CPU at 1,000 calls a second). A controller of its
 * own per call bounded that, but cost about 0.7 µs a call on Deno; a controller per
 * {@link CALLS_PER_SIGNAL} calls bounds it as well, for next to nothing.
 */
export class CallSignals {
  readonly #run: AbortSignal;
  /** Controllers with calls in flight, and how many. */
  readonly #live = new Map<AbortController, number>();
  #current = new AbortController();
  #uses = 0;

  constructor(run: AbortSignal) {
    this.#run = run;
    run.addEventListener("abort", () => {
      for (const controller of this.#live.keys()) controller.abort(run.reason);
      this.#current.abort(run.reason);
    }, { once: true });
  }

  /** The controller for a call about to start; hand it back to {@link release} when it ends. */
  take(): AbortController {
    if (++this.#uses > CALLS_PER_SIGNAL || this.#current.signal.aborted) {
      this.#current = new AbortController();
      this.#uses = 1;
      if (this.#run.aborted) this.#current.abort(this.#run.reason);
    }
    const controller = this.#current;
    this.#live.set(controller, (this.#live.get(controller) ?? 0) + 1);
    return controller;
  }

  /** Ends a call's hold on `controller`. */
  release(controller: AbortController): void {
    const left = (this.#live.get(controller) ?? 1) - 1;
    if (left > 0) this.#live.set(controller, left);
    else this.#live.delete(controller);
  }
}
