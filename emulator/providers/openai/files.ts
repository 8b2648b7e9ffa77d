/**
 * The Files API: multipart upload (`file`, `purpose`, `expires_after[…]`), retrieval, download,
 * deletion and the cursor-paged list. Files live in memory; one past its `expires_at` on the
 * emulator's clock is gone (404), as a deleted one is.
 * @module
 */
import { type EmulatorContext, type EmulatorRequest, HttpError, type Route } from "../../server.ts";
import { badValue, checkNumber, invalid, missing } from "./errors.ts";
import { nextId } from "./ids.ts";

/** Purposes an upload may name. */
export const UPLOAD_PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];

/** The Batch API's default input-file size limit (limit name `maxBytes`). */
export const MAX_BATCH_BYTES = 200 * 1024 * 1024;

/** One stored file. */
export interface StoredFile {
  id: string;
  bytes: Uint8Array;
  filename: string;
  purpose: string;
  /** Unix seconds. */
  createdAt: number;
  expiresAt: number | null;
  /** Creation order, for listing. */
  seq: number;
  deleted: boolean;
  /** `batches.create` attempts that found this file not yet visible. */
  hiddenAttempts: number;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/** The files of one emulator. */
export class FileStore {
  readonly #ctx: EmulatorContext;
  readonly #files = new Map<string, StoredFile>();
  readonly #checkUpload?: (form: FormData) => void;

  /** `checkUpload` runs on an upload's fields once the hand-written checks pass (the contract check). */
  constructor(ctx: EmulatorContext, checkUpload?: (form: FormData) => void) {
    this.#ctx = ctx;
    this.#checkUpload = checkUpload;
  }

  /** Stores a file and returns it. */
  add(
    bytes: Uint8Array,
    filename: string,
    purpose: string,
    expiresAt: number | null = null,
  ): StoredFile {
    const { id, n: seq } = nextId(this.#ctx, "file", "file-", 22);
    const file: StoredFile = {
      id,
      bytes,
      filename,
      purpose,
      createdAt: seconds(this.#ctx.clock.now()),
      expiresAt,
      seq,
      deleted: false,
      hiddenAttempts: 0,
    };
    this.#files.set(file.id, file);
    return file;
  }

  /** A live file (not deleted, not expired), or undefined. */
  get(id: string): StoredFile | undefined {
    const f = this.#files.get(id);
    if (!f || f.deleted) return undefined;
    if (f.expiresAt !== null && seconds(this.#ctx.clock.now()) >= f.expiresAt) return undefined;
    return f;
  }

  /** A live file, or the API's 404. */
  require(id: string): StoredFile {
    const f = this.get(id);
    if (!f) {
      throw new HttpError(404, `No such File object: ${id}`, "invalid_request_error", {
        param: "id",
      });
    }
    return f;
  }

  /** The `file` object of the API. */
  object(f: StoredFile): Record<string, unknown> {
    return {
      id: f.id,
      object: "file",
      bytes: f.bytes.length,
      created_at: f.createdAt,
      expires_at: f.expiresAt,
      filename: f.filename,
      purpose: f.purpose,
      status: "processed",
      status_details: null,
    };
  }

  /** Live files, newest first. */
  list(): StoredFile[] {
    return [...this.#files.keys()].map((id) => this.get(id)).filter((f): f is StoredFile => !!f)
      .sort((a, b) => b.seq - a.seq);
  }

  /** The routes of the Files API. */
  routes(): Route[] {
    return [
      { method: "POST", path: /^\/v1\/files$/, handle: (req) => this.#upload(req) },
      { method: "GET", path: /^\/v1\/files$/, handle: (req) => ({ json: this.#listPage(req) }) },
      {
        method: "GET",
        path: /^\/v1\/files\/(?<id>[^/]+)$/,
        handle: (req) => ({ json: this.object(this.require(req.params.id)) }),
      },
      {
        method: "GET",
        path: /^\/v1\/files\/(?<id>[^/]+)\/content$/,
        handle: (req) => {
          const f = this.require(req.params.id);
          if (f.purpose === "assistants") {
            throw invalid("Not allowed to download files of purpose: assistants", null);
          }
          return {
            body: f.bytes,
            headers: {
              "content-type": "application/octet-stream",
              "content-disposition": `attachment; filename="${f.filename}"`,
            },
          };
        },
      },
      {
        method: "DELETE",
        path: /^\/v1\/files\/(?<id>[^/]+)$/,
        handle: (req) => {
          const f = this.require(req.params.id);
          f.deleted = true;
          return { json: { id: f.id, object: "file", deleted: true } };
        },
      },
    ];
  }

  async #upload(req: EmulatorRequest) {
    const type = req.headers["content-type"] ?? "";
    if (!type.startsWith("multipart/form-data")) {
      throw invalid(
        `Invalid Content-Type header (${
          type || "none"
        }), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')`,
        null,
      );
    }
    let form: FormData;
    try {
      form = await new Response(req.raw, { headers: { "content-type": type } }).formData();
    } catch {
      throw invalid("Could not parse multipart form", null);
    }
    const purpose = form.get("purpose");
    const file = form.get("file");
    if (file === null) throw missing("file");
    if (typeof file === "string") {
      throw invalid("'file' must be a file upload, not a plain form field.", "file");
    }
    if (purpose === null) throw missing("purpose");
    if (!UPLOAD_PURPOSES.includes(String(purpose))) {
      throw badValue("purpose", purpose, UPLOAD_PURPOSES);
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const filename = file.name || "upload";
    if (purpose === "batch") {
      if (!filename.endsWith(".jsonl")) {
        throw invalid("Invalid file format for Batch API. Must be .jsonl", "file");
      }
      // The real API refuses an oversized batch file here, at upload (curator#111), not in validation.
      if (bytes.length > this.#ctx.limit("maxBytes", MAX_BATCH_BYTES)) {
        throw invalid("File is too large.", null);
      }
    }
    const now = seconds(this.#ctx.clock.now());
    let expiresAt: number | null = purpose === "batch" ? now + 30 * 86400 : null;
    const anchor = form.get("expires_after[anchor]");
    const secs = form.get("expires_after[seconds]");
    if (anchor !== null || secs !== null) {
      if (anchor === null) throw missing("expires_after.anchor");
      if (anchor !== "created_at") throw badValue("expires_after.anchor", anchor, ["created_at"]);
      if (secs === null) throw missing("expires_after.seconds");
      expiresAt = now +
        checkNumber(Number(secs), "expires_after.seconds", "integer", 3600, 2592000);
    }
    this.#checkUpload?.(form);
    return { json: this.object(this.add(bytes, filename, String(purpose), expiresAt)) };
  }

  #listPage(req: EmulatorRequest) {
    const q = req.query;
    const limit = q.has("limit")
      ? checkNumber(Number(q.get("limit")), "limit", "integer", 1, 10000)
      : 10000;
    const order = q.get("order") ?? "desc";
    if (order !== "asc" && order !== "desc") throw badValue("order", order, ["asc", "desc"]);
    let files = this.list();
    if (order === "asc") files.reverse();
    if (q.has("purpose")) files = files.filter((f) => f.purpose === q.get("purpose"));
    return page(files.map((f) => this.object(f)), limit, q.get("after"));
  }
}

/** A cursor page (`after` = the id of the last item seen) in the API's list shape. */
export function page(
  items: Array<Record<string, unknown>>,
  limit: number,
  after: string | null,
): Record<string, unknown> {
  let start = 0;
  if (after) {
    const at = items.findIndex((i) => i.id === after);
    start = at < 0 ? items.length : at + 1;
  }
  const data = items.slice(start, start + limit);
  return {
    object: "list",
    data,
    first_id: (data[0]?.id as string | undefined) ?? null,
    last_id: (data.at(-1)?.id as string | undefined) ?? null,
    has_more: start + limit < items.length,
  };
}
