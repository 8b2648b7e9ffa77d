/**
 * Anthropic's traffic checked against JSON Schemas generated from the official SDK's types
 * (see `anthropic-schemas.ts`): the Messages API, token counting and Message Batches.
 * @module
 */
import { definitionChecks } from "./ajv.ts";
import { type AnthropicSchemas, type AnthropicTypeName, anthropicSchemas } from "./anthropic-schemas.ts";
import { jsonOf, linesOf, type RouteRule, routeValidator, type Validator } from "./violations.ts";

/** A validator of Anthropic traffic; generates (or reads cached) schemas first. */
export async function anthropicValidator(schemas?: AnthropicSchemas): Promise<Validator> {
  const { document, sdkVersion } = schemas ?? await anthropicSchemas();
  const check = definitionChecks(document, `https://loom.invalid/anthropic-sdk-${sdkVersion}`);
  const json = (type: AnthropicTypeName) => (body: Parameters<RouteRule["response"]>[0]) => jsonOf(body, check(type));
  /** Success answers have their type; every error has the shape of `ErrorResponse`. */
  const answer = (type: AnthropicTypeName): RouteRule["response"] => (body, status) =>
    status >= 400 ? jsonOf(body, check("ErrorResponse")) : jsonOf(body, check(type));
  const batch = "/v1/messages/batches/[^/]+";
  const routes: RouteRule[] = [
    { method: "POST", path: /^\/v1\/messages$/, request: json("MessageCreateParamsNonStreaming"), response: answer("Message") },
    { method: "POST", path: /^\/v1\/messages\/count_tokens$/, request: json("MessageCountTokensParams"), response: answer("MessageTokensCount") },
    { method: "POST", path: /^\/v1\/messages\/batches$/, request: json("BatchCreateParams"), response: answer("MessageBatch") },
    { method: "GET", path: new RegExp(`^${batch}$`), response: answer("MessageBatch") },
    { method: "POST", path: new RegExp(`^${batch}/cancel$`), response: answer("MessageBatch") },
    { method: "DELETE", path: new RegExp(`^${batch}$`), response: answer("DeletedMessageBatch") },
    {
      method: "GET",
      path: new RegExp(`^${batch}/results$`),
      response: (body, status) =>
        status >= 400 ? jsonOf(body, check("ErrorResponse")) : linesOf(body, check("MessageBatchIndividualResponse")),
    },
  ];
  return routeValidator(routes);
}
