/**
 * Identifiers in OpenAI's shapes (`file-…`, `batch_…`, `chatcmpl-…`, `req_…`), deterministic per
 * emulator: each kind draws from its own counter and its own region of the id space, so ids of
 * different kinds never share a prefix.
 * @module
 */
import { hexId } from "../../answers.ts";
import type { EmulatorContext } from "../../server.ts";

const SALTS = {
  file: 1,
  batch: 2,
  chatcmpl: 3,
  batch_req: 4,
  req: 5,
  resp: 6,
  msg: 7,
  rs: 8,
} as const;

/** The next id of a kind: `prefix` + `width` hex digits. */
export function nextId(
  ctx: EmulatorContext,
  kind: keyof typeof SALTS,
  prefix: string,
  width: number,
): { id: string; n: number } {
  const n = ctx.next(kind);
  return { id: `${prefix}${hexId(n * 16 + SALTS[kind], width)}`, n };
}
