/**
 * The Files API: Google's resumable upload protocol (start, then 8 MiB chunks, the last one
 * finalizing), file metadata, listing, deletion, and downloads of generated files (batch
 * results) at both `/{ver}/files/{id}:download` and `/download/{ver}/files/{id}:download`.
 *
 * Files live 48 hours on the emulator's clock. As on the real API, a missing file answers 403
 * PERMISSION_DENIED, and only generated files can be downloaded.
 * @module
 */
import { createHash } from "node:crypto";
import type { EmulatorContext, EmulatorRequest, Reply, Route } from "../../server.ts";
import {
  isObject,
  jsonBody,
  LIFETIME_MS,
  makeId,
  pageSize,
  pageToken,
  readPageToken,
  timestamp,
  VERSION,
} from "./common.ts";
import { fileNotFound, googleError, invalidArgument } from "./errors.ts";
import type { FileJson } from "./wire.ts";

/** One stored file. */
export interface StoredFile {
  /** The id: `name` without `files/`. */
  id: string;
  /** Creation order, for listing and page tokens. */
  seq: number;
  displayName?: string;
  mimeType: string;
  bytes: Uint8Array;
  created: number;
  /** `UPLOADED` by a client, or `GENERATED` by the API (batch results). */
  source: "UPLOADED" | "GENERATED";
}

interface Session {
  id: string;
  version: string;
  fileId?: string;
  displayName?: string;
  mimeType: string;
  declared?: number;
  chunks: Uint8Array[];
  received: number;
}

/** Ids: ≤ 40 characters of lowercase letters, digits and dashes, not starting or ending with a dash. */
const FILE_ID = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

/** Files by id, shared with the batches (which read inputs and write results here). */
export class FileStore {
  readonly #ctx: EmulatorContext;
  readonly #files = new Map<string, StoredFile>();

  constructor(ctx: EmulatorContext) {
    this.#ctx = ctx;
  }

  /** A live file, or undefined when it never existed, was deleted or has expired. */
  get(id: string): StoredFile | undefined {
    const file = this.#files.get(id);
    if (!file || this.#ctx.clock.now() >= file.created + LIFETIME_MS) return undefined;
    return file;
  }

  /** Stores a file under a new id (or the one given) and returns it. */
  add(init: Omit<StoredFile, "id" | "seq" | "created">, id?: string): StoredFile {
    const seq = this.#ctx.next("gemini.file");
    const file: StoredFile = {
      ...init,
      id: id ?? makeId(2, seq, 12),
      seq,
      created: this.#ctx.clock.now(),
    };
    this.#files.set(file.id, file);
    return file;
  }

  delete(id: string): boolean {
    return this.#files.delete(id);
  }

  /** Live files, newest first. */
  list(): StoredFile[] {
    return [...this.#files.values()].filter((f) => this.get(f.id)).sort((a, b) => b.seq - a.seq);
  }

  /** The `File` resource as the API renders it (int64 `sizeBytes` as a string). */
  resource(file: StoredFile, version: string): FileJson {
    const origin = this.#ctx.origin;
    const time = timestamp(file.created);
    // sha256Hash is a bytes field, so base64; Google base64-encodes the hex digest [unverified].
    const hex = createHash("sha256").update(file.bytes).digest("hex");
    return {
      name: `files/${file.id}`,
      ...(file.displayName !== undefined ? { displayName: file.displayName } : {}),
      mimeType: file.mimeType,
      sizeBytes: String(file.bytes.length),
      createTime: time,
      updateTime: time,
      expirationTime: timestamp(file.created + LIFETIME_MS),
      sha256Hash: btoa(hex),
      uri: `${origin}/${version}/files/${file.id}`,
      ...(file.source === "GENERATED"
        ? { downloadUri: `${origin}/download/${version}/files/${file.id}:download?alt=media` }
        : {}),
      state: "ACTIVE",
      source: file.source,
    };
  }
}

/** Whether a request is a chunk of an upload already started (it is authorised by its upload id). */
export function isUploadChunk(req: EmulatorRequest): boolean {
  return req.path.startsWith("/upload/") && req.query.has("upload_id");
}

/**
 * The Files API routes. Limits: `maxFileBytes` (2 GB). Knobs for F.27: `omitUploadUrl` (the first
 * N upload starts answer without `x-goog-upload-url`: the SDK throws "Failed to get upload url")
 * and `omitUploadStatus` (the first N chunks are lost and answered without
 * `x-goog-upload-status`: the SDK resends them after 1 s, 2 s).
 */
export function fileRoutes(ctx: EmulatorContext, store: FileStore): Route[] {
  const sessions = new Map<string, Session>();
  const maxBytes = () => ctx.limit("maxFileBytes", 2 * 1024 * 1024 * 1024);

  const start = (req: EmulatorRequest): Reply => {
    const version = req.params.ver;
    if ((req.headers["x-goog-upload-protocol"] ?? "").toLowerCase() !== "resumable") {
      // The real endpoint also takes multipart and raw media uploads; the SDK only uses resumable.
      throw invalidArgument("The emulator only supports X-Goog-Upload-Protocol: resumable.");
    }
    if ((req.headers["x-goog-upload-command"] ?? "").toLowerCase() !== "start") {
      throw invalidArgument(
        "Invalid X-Goog-Upload-Command: a resumable upload begins with 'start'.",
      );
    }
    const body = jsonBody(req);
    const meta = isObject(body.file) ? body.file : {};
    let fileId: string | undefined;
    if (typeof meta.name === "string" && meta.name !== "") {
      fileId = meta.name.replace(/^files\//, "");
      if (!FILE_ID.test(fileId)) {
        throw invalidArgument(
          `Invalid file name: ${meta.name}. The id can contain up to 40 lowercase alphanumeric characters or dashes ` +
            "and cannot start or end with a dash.",
        );
      }
      if (store.get(fileId)) {
        throw googleError(409, `File files/${fileId} already exists.`, "ALREADY_EXISTS");
      }
    }
    const displayName = typeof meta.displayName === "string" ? meta.displayName : undefined;
    if (displayName !== undefined && displayName.length > 512) {
      throw invalidArgument("The display name must be no more than 512 characters in length.");
    }
    const declaredRaw = req.headers["x-goog-upload-header-content-length"] ??
      (meta.sizeBytes as string | undefined);
    const declared = declaredRaw === undefined ? undefined : Number(declaredRaw);
    if (declared !== undefined && declared > maxBytes()) {
      throw invalidArgument(
        `File size ${declared} exceeds the maximum allowed size of ${maxBytes()} bytes.`,
      );
    }
    const mimeType = (typeof meta.mimeType === "string" && meta.mimeType) ||
      req.headers["x-goog-upload-header-content-type"] || "application/octet-stream";
    const id = makeId(3, ctx.next("gemini.upload"), 32);
    sessions.set(id, {
      id,
      version,
      fileId,
      displayName,
      mimeType,
      declared,
      chunks: [],
      received: 0,
    });
    const url = `${ctx.origin}/upload/${version}/files?upload_id=${id}&upload_protocol=resumable`;
    const headers: Record<string, string> = {
      "x-goog-upload-status": "active",
      "x-goog-upload-chunk-granularity": String(8 * 1024 * 1024),
    };
    if (ctx.next("gemini.uploadStarts") > ctx.limit("omitUploadUrl", 0)) {
      headers["x-goog-upload-url"] = url;
      headers["x-goog-upload-control-url"] = url;
    }
    return { status: 200, headers };
  };

  const chunk = (req: EmulatorRequest): Reply => {
    const session = sessions.get(req.query.get("upload_id") ?? "");
    if (!session) {
      throw googleError(404, "No upload session was found for this upload_id.", "NOT_FOUND");
    }
    const commands = (req.headers["x-goog-upload-command"] ?? "").split(",").map((c) =>
      c.trim().toLowerCase()
    );
    const active = (extra: Record<string, string> = {}): Reply => ({
      status: 200,
      headers: {
        "x-goog-upload-status": "active",
        "x-goog-upload-size-received": String(session.received),
        ...extra,
      },
    });
    if (commands.includes("query")) return active();
    if (commands.includes("cancel")) {
      sessions.delete(session.id);
      return { status: 200, headers: { "x-goog-upload-status": "cancelled" } };
    }
    if (commands.includes("upload")) {
      const offset = Number(req.headers["x-goog-upload-offset"] ?? "NaN");
      if (offset !== session.received) {
        throw invalidArgument(
          `Invalid X-Goog-Upload-Offset ${offset}: ${session.received} bytes have been received.`,
        );
      }
      if (ctx.next("gemini.uploadChunks") <= ctx.limit("omitUploadStatus", 0)) {
        return { status: 200 }; // a lost chunk: nothing kept, and no status for the SDK to read
      }
      session.chunks.push(req.raw);
      session.received += req.raw.length;
      if (session.received > maxBytes()) {
        sessions.delete(session.id);
        throw invalidArgument(`File size exceeds the maximum allowed size of ${maxBytes()} bytes.`);
      }
    }
    if (!commands.includes("finalize")) return active();
    if (session.declared !== undefined && session.declared !== session.received) {
      throw invalidArgument(
        `Upload finalized after ${session.received} bytes, but X-Goog-Upload-Header-Content-Length said ${session.declared}.`,
      );
    }
    sessions.delete(session.id);
    const bytes = new Uint8Array(session.received);
    let at = 0;
    for (const c of session.chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    const file = store.add({
      displayName: session.displayName,
      mimeType: session.mimeType,
      bytes,
      source: "UPLOADED",
    }, session.fileId);
    return {
      status: 200,
      headers: {
        "x-goog-upload-status": "final",
        "x-goog-upload-size-received": String(session.received),
      },
      json: { file: store.resource(file, session.version) },
    };
  };

  const found = (req: EmulatorRequest): StoredFile => {
    const file = store.get(req.params.id);
    if (!file) throw fileNotFound(req.params.id);
    return file;
  };

  const download = (req: EmulatorRequest): Reply => {
    const file = found(req);
    if (req.query.get("alt") !== "media") {
      throw invalidArgument("Downloads need the query parameter alt=media.");
    }
    if (file.source !== "GENERATED") {
      // The Files API serves only what it generated; uploads cannot be read back [wording unverified].
      throw invalidArgument(
        `Only generated files can be downloaded; files/${file.id} was uploaded.`,
      );
    }
    return { status: 200, headers: { "content-type": file.mimeType }, body: file.bytes };
  };

  return [
    {
      method: "POST",
      path: new RegExp(`^/upload/${VERSION}/files$`),
      handle: (req) => isUploadChunk(req) ? chunk(req) : start(req),
    },
    {
      method: "GET",
      path: new RegExp(`^/${VERSION}/files/(?<id>[^/:]+):download$`),
      handle: download,
    },
    {
      method: "GET",
      path: new RegExp(`^/download/${VERSION}/files/(?<id>[^/:]+):download$`),
      handle: download,
    },
    {
      method: "GET",
      path: new RegExp(`^/${VERSION}/files/(?<id>[^/:]+)$`),
      handle: (req) => ({ json: store.resource(found(req), req.params.ver) }),
    },
    {
      method: "DELETE",
      path: new RegExp(`^/${VERSION}/files/(?<id>[^/:]+)$`),
      handle: (req) => {
        store.delete(found(req).id);
        return { json: {} };
      },
    },
    {
      method: "GET",
      path: new RegExp(`^/${VERSION}/files$`),
      handle: (req) => {
        const size = pageSize(req.query.get("pageSize"), 10, 100);
        const token = req.query.get("pageToken");
        let files = store.list();
        if (token) {
          const after = readPageToken("files", token);
          files = files.filter((f) => f.seq < after);
        }
        const page = files.slice(0, size);
        const out: { files?: FileJson[]; nextPageToken?: string } = {};
        // Proto3 JSON leaves out an empty list: no files means `{}`.
        if (page.length) out.files = page.map((f) => store.resource(f, req.params.ver));
        if (files.length > size) out.nextPageToken = pageToken("files", page.at(-1)!.seq);
        return { json: out };
      },
    },
  ];
}
