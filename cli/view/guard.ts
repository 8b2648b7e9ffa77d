/**
 * What keeps `loom view` to the person who started it. The server listens on loopback only, but a
 * web page in any tab can still send requests to 127.0.0.1; so every request must
 * - name the server itself as its Host (a DNS-rebinding page reaches it under another name),
 * - come from no Origin or from the server's own (another site's script is refused),
 * - carry the token printed at start: in the URL (`?token=`) once, then the cookie set in answer to
 *   it, or an `X-Loom-Token` header,
 * - and only read (GET or HEAD), unless the viewer was started with `--actions`: then a POST is let
 *   in too, but only with the token in the `X-Loom-Token` header (a page of another site can make
 *   a browser send the cookie, never that header), so a state-changing request is the page's own.
 * @module
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";

/** A fresh token for one start of the server: 128 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(16).toString("base64url");
}

/** The cookie holding the token; per port, as cookies are shared by every port of a host. */
export function cookieName(port: number): string {
  return `loom_view_${port}`;
}

function same(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function refuse(status: number, why: string): Response {
  return new Response(`loom view: ${why}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}

/**
 * The middleware enforcing the rules above for the server on `port()` with `token`; `actions`:
 * POST is allowed (`loom view --actions`).
 */
export function guard(token: string, port: () => number, actions = false): MiddlewareHandler {
  return async (c, next) => {
    const own = [`127.0.0.1:${port()}`, `localhost:${port()}`];
    const host = c.req.header("host")?.toLowerCase();
    if (!host || !own.includes(host)) {
      return refuse(403, `refused: Host ${JSON.stringify(host ?? "")} is not this server's`);
    }
    const origin = c.req.header("origin");
    if (origin !== undefined && !own.some((h) => origin.toLowerCase() === `http://${h}`)) {
      return refuse(403, `refused: requests from ${JSON.stringify(origin)} are not allowed`);
    }
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      if (!actions || c.req.method !== "POST") {
        return refuse(
          405,
          `${c.req.method} is not allowed: the viewer only reads${
            actions ? "" : " (loom view --actions allows Fetch, Cancel and Retry)"
          }`,
        );
      }
      if (!same(c.req.header("x-loom-token"), token)) {
        return refuse(403, "refused: an action needs the token in the X-Loom-Token header");
      }
    }
    const fromUrl = c.req.query("token");
    const given = fromUrl ?? c.req.header("x-loom-token") ?? getCookie(c, cookieName(port()));
    if (!same(given, token)) {
      return refuse(
        401,
        "open the URL loom view printed (with its token); the token changes at every start",
      );
    }
    if (fromUrl !== undefined) {
      setCookie(c, cookieName(port()), token, { httpOnly: true, sameSite: "Strict", path: "/" });
    }
    await next();
    // The token is in the URL: it must not leave in a Referer, nor the pages be framed or kept.
    c.header("referrer-policy", "no-referrer");
    c.header("x-frame-options", "DENY");
    c.header("x-content-type-options", "nosniff");
    c.header("cache-control", "no-store");
    c.header(
      "content-security-policy",
      "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
  };
}
