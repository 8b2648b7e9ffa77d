/**
 * The one place `loom view` meets the runtime's HTTP server: `Deno.serve` under Deno, Node's
 * `http` through `@hono/node-server` under Node. Both listen on 127.0.0.1 only.
 * @module
 */
import type { AddressInfo } from "node:net";
import { LoomUsageError } from "../../core/base/errors.ts";
import { runtimeName } from "../../core/base/runtime.ts";

/** The loopback address the viewer binds: never another interface. */
export const LOOPBACK = "127.0.0.1";

/** A running server. */
export interface Listening {
  /** The port it listens on (the one the system chose when asked for 0). */
  readonly port: number;
  /** Stops accepting, ends open connections, and resolves once the server is closed. */
  close(): Promise<void>;
}

type Handler = (request: Request) => Response | Promise<Response>;

/**
 * Serves `handler` on 127.0.0.1:`port` (0: a free port).
 * @throws LoomUsageError when the port is in use or may not be bound.
 */
export function listen(handler: Handler, port: number): Promise<Listening> {
  return runtimeName() === "deno" ? listenDeno(handler, port) : listenNode(handler, port);
}

function refused(port: number, code: string | undefined, message: string): LoomUsageError {
  const why = code === "EADDRINUSE" || /in use/i.test(message)
    ? "is in use by another program"
    : code === "EACCES" || /permission/i.test(message)
    ? "may not be used by this user"
    : `cannot be listened on (${message})`;
  return new LoomUsageError(
    `port ${port} on ${LOOPBACK} ${why}: pick another with --port, or leave --port out for a free one`,
  );
}

interface DenoServer {
  readonly addr: { readonly port: number };
  shutdown(): Promise<void>;
  readonly finished: Promise<void>;
}
interface DenoApi {
  serve(
    options: { port: number; hostname: string; onListen?: () => void },
    handler: Handler,
  ): DenoServer;
}

async function listenDeno(handler: Handler, port: number): Promise<Listening> {
  const deno = (globalThis as unknown as { Deno: DenoApi }).Deno;
  let server: DenoServer;
  try {
    server = deno.serve({ port, hostname: LOOPBACK, onListen: () => {} }, handler);
  } catch (error) {
    const e = error as { code?: string; name?: string; message?: string };
    throw refused(
      port,
      e.code ?? (e.name === "AddrInUse" ? "EADDRINUSE" : e.name),
      e.message ?? "",
    );
  }
  return {
    port: server.addr.port,
    close: async () => {
      await server.shutdown();
      await server.finished;
    },
  };
}

async function listenNode(handler: Handler, port: number): Promise<Listening> {
  // Imported here: Deno never loads Node's adapter.
  const { createAdaptorServer } = await import("@hono/node-server");
  const server = createAdaptorServer({ fetch: handler }) as import("node:http").Server;
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) =>
      reject(refused(port, error.code, error.message));
    server.once("error", failed);
    server.listen(port, LOOPBACK, () => {
      server.off("error", failed);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A browser keeps its connections open: end them, or close would wait for them.
        server.closeAllConnections();
      }),
  };
}
