/**
 * `loom view --actions`: the jobs page's Fetch, Cancel and Retry, as `POST
 * /api/jobs/:id/actions/:action`. Each runs the core function its command runs (`fetchJobs`,
 * `cancelJob`, `retryJob`), on the viewer's store, under the job's lease; so whatever keeps the
 * CLI from paying twice (in-doubt batches left alone, a retry only of fetched jobs) holds here too.
 * The guard lets these requests in only with the token in the `X-Loom-Token` header.
 * @module
 */
import type { Context, Hono } from "hono";
import { cancelJob, fetchJobs, type JobCommandOptions, retryJob } from "../../core/batch/jobs.ts";
import { phaseOf } from "../../core/batch/shard.ts";
import type { JobRecord } from "../../core/batch/store.ts";
import { errorMessage, LoomBusyError, LoomUsageError } from "../../core/base/errors.ts";
import { displayPath } from "../../core/base/paths.ts";
import { collectSecrets, createRedactor, type Redactor } from "../../core/base/secrets.ts";
import { readDotEnv } from "../../core/job/keys.ts";
import type { StorageV2 } from "../../core/spec/storage.ts";
import { jobState } from "../commands/batch.ts";
import type { ViewSources } from "./app.ts";
import { Answer, jobOf } from "./targets.ts";

/** What the actions need besides the routes' sources: how the CLI commands would be run. */
export interface ActionSettings {
  /** `loom view --api-key`; else the provider's environment variable, as for every command. */
  readonly apiKey?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The viewer's store: the actions work on the jobs it shows. */
  readonly store: StorageV2;
}

/** The actions, by the name in the route. */
const ACTIONS = ["fetch", "cancel", "retry"] as const;
type ActionName = (typeof ACTIONS)[number];

/** What an action did, as the page shows it. */
export interface ActionAnswer {
  readonly action: ActionName;
  readonly job: string;
  /** One sentence saying what happened. */
  readonly message: string;
  /** The job's status afterwards (as `loom list` words it). */
  readonly status: string;
  /** Warnings the core gave on the way (an upload that could not be deleted, say). */
  readonly warnings: readonly string[];
  /** fetch: whether the job was merged, and its rows. */
  readonly merged?: boolean;
  readonly rows?: number;
  readonly answered?: number;
  readonly failed?: number;
  /** cancel: batches the provider was asked to cancel, and those it refused (numbered from 1). */
  readonly cancelled?: number;
  readonly notCancelled?: readonly { batch: number; error: string }[];
  /** retry: rows submitted again (as new batches of the same job). */
  readonly retried?: number;
}

/**
 * Registers the action routes on `app` (only `loom view --actions` does). `token` is the viewer's:
 * the page gets it from `GET /api/actions` (its cookie cannot be read by script, and after a reload
 * the address bar no longer holds it) to send it back in the header; another site's page cannot
 * read that answer (no CORS), and a rebinding one is refused by its Host.
 */
export function registerActions(
  app: Hono,
  sources: ViewSources,
  settings: ActionSettings,
  token: string,
): void {
  const redact = createRedactor(
    collectSecrets({ ...readDotEnv(sources.cwd), ...settings.env }, settings.apiKey),
  );
  // Jobs with an action running in this viewer: a double click or a second tab is refused here
  // (409, never queued); another Loom process is kept out by the job's lease, answered the same.
  const running = new Set<string>();

  app.get("/api/actions", (c) => c.json({ actions: ACTIONS, token }));

  app.post("/api/jobs/:id/actions/:action", async (c) => {
    try {
      const action = c.req.param("action") as ActionName;
      if (!ACTIONS.includes(action)) {
        throw new Answer(404, `no action ${JSON.stringify(action)}: fetch, cancel or retry`);
      }
      await confirmed(c);
      const record = await jobOf(sources, c.req.param("id"));
      if (running.has(record.id)) {
        throw new Answer(
          409,
          `an action on job ${record.id} is already running; wait for its answer, then try again`,
        );
      }
      running.add(record.id);
      try {
        // The core scrubs what it throws; what it returns (a provider's reason a cancel failed,
        // a warning) is scrubbed here too, so no answer can hold a key.
        return c.json(scrubbed(await act(action, record, sources, settings), redact));
      } finally {
        running.delete(record.id);
      }
    } catch (error) {
      return c.json({ error: redact(refusalOf(error).message) }, refusalOf(error).status);
    }
  });
}

/** `value` with `redact` applied to every string in it. */
function scrubbed<T>(value: T, redact: Redactor): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => scrubbed(v, redact)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, scrubbed(v, redact)]),
    ) as T;
  }
  return value;
}

/** Refuses a request that is not JSON with `"confirm": true` (the page's dialog sends it). */
async function confirmed(c: Context): Promise<void> {
  if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) {
    throw new Answer(
      400,
      'an action takes a JSON body (content-type application/json): {"confirm": true}',
    );
  }
  const body = await c.req.json().catch(() => undefined);
  if (body?.confirm !== true) {
    throw new Answer(400, 'an action must be confirmed: send {"confirm": true} as its body');
  }
}

/**
 * A refusal's status and message: a job another Loom works on, or in a state that does not allow
 * the action (the core's usage errors say why and what to do), is 409; anything else 500.
 */
function refusalOf(error: unknown): { status: 400 | 404 | 409 | 500; message: string } {
  if (error instanceof Answer) return error;
  if (error instanceof LoomBusyError || error instanceof LoomUsageError) {
    return { status: 409, message: error.message };
  }
  return { status: 500, message: errorMessage(error) };
}

/** Runs one action through the core, as its CLI command does. */
async function act(
  action: ActionName,
  record: JobRecord,
  sources: ViewSources,
  settings: ActionSettings,
): Promise<ActionAnswer> {
  const warnings: string[] = [];
  const options: JobCommandOptions = {
    apiKey: settings.apiKey,
    env: settings.env,
    cwd: sources.cwd,
    store: settings.store,
    // Kept once merged, so the job stays on the page with its rows (`loom forget` removes it).
    keep: true,
    onEvent: (event) => {
      if (event.type === "warning") warnings.push(event.message);
    },
  };
  const base = { action, job: record.id, warnings };
  if (action === "fetch") {
    const [outcome] = await fetchJobs([record.id], options);
    if ("error" in outcome) throw outcome.error;
    const fresh = outcome.record;
    const output = displayPath(fresh.output, sources.cwd);
    if (outcome.alreadyMerged) {
      return {
        ...base,
        status: jobState(fresh),
        merged: true,
        message: `job ${fresh.id} was already merged into ${output}`,
      };
    }
    const summary = outcome.summary;
    if (!summary) {
      return {
        ...base,
        status: jobState(fresh),
        merged: false,
        message: `job ${fresh.id}'s batches have not all ended (${
          jobState(fresh)
        }); nothing was merged, fetch again later`,
      };
    }
    return {
      ...base,
      status: jobState(fresh),
      merged: true,
      rows: summary.rows,
      answered: summary.ok,
      failed: summary.errors,
      message:
        `merged job ${fresh.id} into ${output}: ${summary.rows} rows, ${summary.ok} answered, ${summary.errors} failed`,
    };
  }
  if (action === "cancel") {
    const asked = record.shards.filter((s) => phaseOf(s) === "submitted").length;
    const { record: fresh, failed } = await cancelJob(record.id, options);
    return {
      ...base,
      status: jobState(fresh),
      cancelled: asked - failed.length,
      notCancelled: failed.map((f) => ({ batch: f.shard + 1, error: f.error })),
      message: `cancellation requested for job ${fresh.id} (${jobState(fresh)})${
        failed.length ? `; ${failed.length} batch(es) could not be cancelled` : ""
      }; Fetch merges what finished once the batches have ended`,
    };
  }
  const { record: fresh, rows } = await retryJob(record.id, options);
  return {
    ...base,
    status: jobState(fresh),
    retried: rows,
    message: rows
      ? `submitted ${rows} row(s) of job ${fresh.id} again as new batches of the same job; Fetch merges them once done`
      : `job ${fresh.id}: every row has an answer; nothing to retry`,
  };
}
