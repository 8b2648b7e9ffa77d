/**
 * The OpenAI emulator: Chat Completions, the Responses API (with input-token counting), Files
 * and Batches, behind `Authorization: Bearer` with OpenAI's error bodies. The pieces live in
 * `./openai/`; the chat builder is re-exported for the OpenRouter module, which serves the same
 * protocol. Every request body is also checked against OpenAI's published OpenAPI definition
 * (`./openai/contract.ts`; option `openaiSpec`) once the hand-written checks pass.
 * @module
 */
import {
  type EmulatorContext,
  type EmulatorRequest,
  HttpError,
  type ProviderEmulator,
  type Route,
} from "../server.ts";
import { BatchStore, linePrompts } from "./openai/batches.ts";
import { chatPrompts, chatReply } from "./openai/chat.ts";
import { openAIContract } from "./openai/contract.ts";
import { errorReply, maskKey } from "./openai/errors.ts";
import { FileStore } from "./openai/files.ts";
import { OPENAI_MODELS } from "./openai/models.ts";
import { inputTokens, responseObject, responsePrompts } from "./openai/responses.ts";

export {
  buildChatCompletion,
  chatCompletion,
  type ChatOptions,
  chatPrompts,
  chatReply,
  type ChatRequest,
  chatStream,
  parseChatRequest,
} from "./openai/chat.ts";
export { errorReply as openAIError, maskKey } from "./openai/errors.ts";
export { OPENAI_MODELS } from "./openai/models.ts";

/** Creates the OpenAI provider of an emulator. */
export function createOpenAI(ctx: EmulatorContext): ProviderEmulator {
  const contract = openAIContract(ctx.options);
  const files = new FileStore(
    ctx,
    contract ? (form) => contract.checkForm("createFile", form) : undefined,
  );
  const batches = new BatchStore(ctx, files, OPENAI_MODELS, contract ?? undefined);
  /** The published request schema, checked once the hand-written checks (the real messages) pass. */
  const checked = (operation: string, handle: Route["handle"]): Route["handle"] => async (req) => {
    const reply = await handle(req);
    contract?.check(operation, req.json());
    return reply;
  };
  const model = (id: string) => ({
    id,
    object: "model",
    created: 1_700_000_000,
    owned_by: "system",
  });
  const listed = () => (Array.isArray(ctx.options.models) ? ctx.options.models : OPENAI_MODELS);

  const routes: Route[] = [
    {
      method: "POST",
      path: /^\/v1\/chat\/completions$/,
      answers: true,
      handle: checked(
        "createChatCompletion",
        (req) => chatReply(ctx, req.json(), OPENAI_MODELS, { reply: req.replyText }),
      ),
    },
    {
      method: "POST",
      path: /^\/v1\/responses$/,
      answers: true,
      handle: checked(
        "createResponse",
        (req) => ({ json: responseObject(ctx, req.json(), OPENAI_MODELS, req.replyText) }),
      ),
    },
    {
      method: "POST",
      path: /^\/v1\/responses\/input_tokens$/,
      handle: checked(
        "Getinputtokencounts",
        (req) => ({ json: inputTokens(ctx, req.json(), OPENAI_MODELS) }),
      ),
    },
    {
      method: "GET",
      path: /^\/v1\/models$/,
      handle: () => ({ json: { object: "list", data: listed().map(model) } }),
    },
    {
      method: "GET",
      path: /^\/v1\/models\/(?<id>.+)$/,
      handle: (req) => {
        if (!ctx.acceptsModel(req.params.id, OPENAI_MODELS)) {
          throw new HttpError(
            404,
            `The model '${req.params.id}' does not exist`,
            "model_not_found",
            { param: "model" },
          );
        }
        return { json: model(req.params.id) };
      },
    },
    ...files.routes(),
    ...batches.routes(),
  ];

  return {
    routes,
    error: errorReply,
    authenticate(req: EmulatorRequest) {
      const header = req.headers.authorization ?? "";
      const key = header.match(/^Bearer\s+(.*)$/i)?.[1]?.trim() ?? "";
      if (!key) {
        return new HttpError(
          401,
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer " +
            "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're " +
            "accessing the API from your browser and are prompted for a username and password. You can obtain an API " +
            "key from https://platform.openai.com/account/api-keys.",
          "invalid_request_error",
        );
      }
      if (key !== ctx.options.apiKey) {
        return new HttpError(
          401,
          `Incorrect API key provided: ${
            maskKey(key)
          }. You can find your API key at https://platform.openai.com/account/api-keys.`,
          "invalid_api_key",
        );
      }
      return null;
    },
    prompts(req: EmulatorRequest) {
      if (req.method !== "POST") return [];
      if (req.path === "/v1/chat/completions") return chatPrompts(req.json());
      if (req.path.startsWith("/v1/responses")) return responsePrompts(req.json());
      if (req.path === "/v1/batches") return batches.prompts(req.json());
      if (req.path === "/v1/files") return linePrompts(new TextDecoder().decode(req.raw));
      return [];
    },
    headers() {
      return {
        "openai-version": "2020-10-01",
        "openai-organization": "org-emulator",
        "openai-processing-ms": "1",
      };
    },
  };
}
