/**
 * `priced`: the offline echo provider whose answers, sync and batch, report a cost in their usage
 * (as OpenRouter's `usage.cost`): one dollar per {@link TOKENS_A_DOLLAR} output tokens.
 * @module
 */
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { LoomProviderError } from "../base/errors.ts";
import { Registry } from "../plugins/registry.ts";
import type { GenerateResult, ProviderV1 } from "../spec/provider.ts";

/**
 * Output tokens a dollar: a cost small enough for JavaScript's exponent form (a division by a
 * power of ten gives the double nearest the decimal, as JSON parsing does).
 */
export const TOKENS_A_DOLLAR = 1e7;

/** Echo's answer with a cost in its usage, after the token counts (as providers write it). */
function priced(result: GenerateResult): GenerateResult {
  const usage = result.usage!;
  return { ...result, usage: { ...usage, cost: usage.outputTokens! / TOKENS_A_DOLLAR } };
}

/** Options of {@link pricedRegistry}. */
export interface PricedOptions {
  /** Counts the sync calls. */
  readonly calls?: { n: number };
  /** A sync prompt holding this text fails with a fatal error (a refused key), ending the run. */
  readonly fatalOn?: string;
}

/** A registry with `priced` registered. */
export function pricedRegistry(options: PricedOptions = {}): Registry {
  const registry = new Registry();
  registry.register({
    apiVersion: 1,
    kind: "provider",
    name: "priced",
    create: (providerOptions, context) => {
      const echo = createEchoProvider(providerOptions as Record<string, unknown>, context.home);
      const batch = echo.batch!;
      const provider: ProviderV1 = {
        ...echo,
        name: "priced",
        async generate(request, callOptions) {
          if (options.calls) options.calls.n++;
          if (
            options.fatalOn && request.messages.some((m) => m.content.includes(options.fatalOn!))
          ) {
            throw new LoomProviderError("priced: the key was refused", {
              status: 401,
              fatal: true,
            });
          }
          return priced(await echo.generate(request, callOptions));
        },
        batch: {
          ...batch,
          async *resultChunks(handle, customIds, callOptions) {
            for await (const chunk of batch.resultChunks!(handle, customIds, callOptions)) {
              yield chunk.map((o) => ("result" in o ? { ...o, result: priced(o.result) } : o));
            }
          },
          async *results(handle, customIds, callOptions) {
            for await (const o of batch.results(handle, customIds, callOptions)) {
              yield "result" in o ? { ...o, result: priced(o.result) } : o;
            }
          },
        },
      };
      return provider;
    },
  });
  return registry;
}
