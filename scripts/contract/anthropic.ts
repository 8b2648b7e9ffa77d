/**
 * Anthropic's traffic checked against JSON Schemas generated from the official SDK's types
 * (see `anthropic-schemas.ts`): the Messages API, token counting and Message Batches.
 * @module
 */
import { definitionChecks } from "./ajv.ts";
import {
  type AnthropicSchemas,
  anthropicSchemas,
  type AnthropicTypeName,
} from "./anthropic-schemas.ts";
import { anthropicOutputSchemaProblems } from "./schema-rules.ts";
import type { DecodedBody, Exchange } from "./proxy.ts";
import {
  jsonOf,
  linesOf,
  missingHeaders,
  type Problem,
  type RouteRule,
  routeValidator,
  under,
  type Validator,
} from "./violations.ts";

type Params = { output_config?: { format?: { schema?: unknown } | null } };

/** The answer schema's problems, where the params carry one. */
const outputSchemaProblems = (params: unknown, at = ""): Problem[] => {
  const schema = (params as Params | undefined)?.output_config?.format?.schema;
  return schema === undefined
    ? []
    : under(`${at}/output_config/format/schema`, anthropicOutputSchemaProblems(schema));
};
const value = (body: DecodedBody) => (body.kind === "json" ? body.value : undefined);

/** A validator of Anthropic traffic; generates (or reads cached) schemas first. */
export async function anthropicValidator(schemas?: AnthropicSchemas): Promise<Validator> {
  const { document, sdkVersion } = schemas ?? await anthropicSchemas();
  const check = definitionChecks(document, `https://loom.invalid/anthropic-sdk-${sdkVersion}`);
  const json = (type: AnthropicTypeName) => (body: DecodedBody) => jsonOf(body, check(type));
  /** A Messages request: its type, and the rules for its answer schema. */
  const params = (type: AnthropicTypeName) => (body: DecodedBody) => [
    ...json(type)(body),
    ...outputSchemaProblems(value(body)),
  ];
  const batchRequests = (body: DecodedBody) => {
    const requests = (value(body) as { requests?: { params?: unknown }[] } | undefined)?.requests ??
      [];
    return [
      ...json("BatchCreateParams")(body),
      ...requests.flatMap((r, i) => outputSchemaProblems(r.params, `/requests/${i}/params`)),
    ];
  };
  /** Success answers have their type; every error has the shape of `ErrorResponse`. */
  const answer = (type: AnthropicTypeName): RouteRule["response"] => (body, status) =>
    status >= 400 ? jsonOf(body, check("ErrorResponse")) : jsonOf(body, check(type));
  const batch = "/v1/messages/batches/[^/]+";
  const routes: RouteRule[] = [
    {
      method: "POST",
      path: /^\/v1\/messages$/,
      request: params("MessageCreateParamsNonStreaming"),
      response: answer("Message"),
    },
    {
      method: "POST",
      path: /^\/v1\/messages\/count_tokens$/,
      request: params("MessageCountTokensParams"),
      response: answer("MessageTokensCount"),
    },
    {
      method: "POST",
      path: /^\/v1\/messages\/batches$/,
      request: batchRequests,
      response: answer("MessageBatch"),
    },
    { method: "GET", path: new RegExp(`^${batch}$`), response: answer("MessageBatch") },
    { method: "POST", path: new RegExp(`^${batch}/cancel$`), response: answer("MessageBatch") },
    { method: "DELETE", path: new RegExp(`^${batch}$`), response: answer("DeletedMessageBatch") },
    {
      method: "GET",
      path: new RegExp(`^${batch}/results$`),
      response: (body, status) =>
        status >= 400
          ? jsonOf(body, check("ErrorResponse"))
          : linesOf(body, check("MessageBatchIndividualResponse")),
    },
  ];
  // Every request names the API version (Anthropic's "Versions" page: a required header) and
  // carries a credential: `x-api-key`, or `authorization: Bearer`, which the SDK (1.x) sends.
  const credential = (x: Exchange): Problem[] =>
    x.request.headers["x-api-key"] || x.request.headers.authorization
      ? []
      : [{ path: "header x-api-key", message: "missing (nor authorization)" }];
  return routeValidator(
    routes,
    (x) => [...missingHeaders(x, ["anthropic-version"]), ...credential(x)],
  );
}
