/** Where a failed connection was going, from real runtime errors and the shapes they take. */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { connectionTarget, withConnectionTarget } from "./connection-target.ts";
import { connectionFailure } from "./http-errors.ts";

describe("connectionTarget", () => {
  it("names the host and port of a refused connection, through fetch's cause chain", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const error = await fetch(`http://127.0.0.1:${port}/v1/models?key=SECRET`).then(
      () => undefined,
      (e: unknown) => e,
    );
    const wrapped = new Error("Connection error.", { cause: error });
    const target = connectionTarget(wrapped);
    assert.ok(target?.includes(`127.0.0.1:${port}`), target);
    assert.ok(!target?.includes("SECRET"));
    assert.equal(
      withConnectionTarget("openai: Connection error.", wrapped),
      `openai: Connection error. (${target})`,
    );
  });

  it("a name that did not resolve, every address of a name, and a URL without its query", () => {
    const notFound = Object.assign(new Error("getaddrinfo ENOTFOUND api.example"), {
      code: "ENOTFOUND",
      hostname: "api.example",
    });
    assert.equal(
      connectionTarget(new Error("x", { cause: notFound })),
      "could not resolve api.example",
    );
    const refused = Object.assign(new Error("connect ECONNREFUSED ::1:8080"), {
      code: "ECONNREFUSED",
      address: "::1",
      port: 8080,
    });
    assert.equal(
      connectionTarget(new AggregateError([refused], "")),
      "could not connect to ::1:8080",
    );
    const deno = new TypeError(
      "error sending request for url (http://user:pw@h.example/v1/x?key=SECRET): client error (Connect)",
    );
    assert.equal(
      connectionTarget(new Error("fetch failed", { cause: deno })),
      "could not reach http://h.example/v1/x",
    );
    assert.equal(connectionTarget(new Error("Connection error.")), undefined);
    assert.equal(withConnectionTarget("m", "not an error"), "m");
  });

  it("an error that does not say where names the client's endpoint, without its secrets", () => {
    const endpoint = { url: "https://user:pw@api.example/v1?key=SECRET", timeoutMs: 250 };
    const failed = connectionFailure("openai", new Error("Connection error."), endpoint);
    assert.equal(
      failed.message,
      "openai: Connection error. (could not reach https://api.example/v1)",
    );
    assert.equal(failed.retryable, true);
    const timedOut = connectionFailure("openai", new Error("Request timed out."), endpoint, true);
    assert.match(
      timedOut.message,
      /^openai: no answer from https:\/\/api\.example\/v1 within 250 ms .*provider_options\.timeout_ms$/,
    );
    assert.doesNotMatch(timedOut.message, /SECRET|pw/);
    // Where the error says, that wins over the endpoint.
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { address: "::1", port: 9 });
    assert.match(
      connectionFailure("openai", new Error("x", { cause: refused }), endpoint).message,
      /\(could not connect to ::1:9\)$/,
    );
  });
});
