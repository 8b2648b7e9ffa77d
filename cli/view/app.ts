/**
 * `loom view`'s routes: the page and its assets, the jobs of the state store, and the rows of the
 * outputs it was given (or of a job's). Only those files can be read through it: a request names
 * a file by its place in the command line or a job by its id, never by a path.
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import { Hono } from "hono";
import type { Context } from "hono";
import type { JobStore } from "../../core/batch/store.ts";
import { errorMessage } from "../../core/base/errors.ts";
import { displayPath } from "../../core/base/paths.ts";
import type { Registry } from "../../core/plugins/registry.ts";
import type { PluginContext } from "../../core/plugins/plugin.ts";
import type { FormatV1 } from "../../core/spec/format.ts";
import { registerCompare } from "./compare.ts";
import { type ActionSettings, registerActions } from "./actions.ts";
import { guard } from "./guard.ts";
import { registerInputRows } from "./input-rows.ts";
import { requestsOf } from "./requests.ts";
import { listShownJobs } from "./jobs.ts";
import { listShownRuns, shownRun } from "./runs.ts";
import type { RowIndexes } from "./row-index.ts";
import { statsRoute } from "./stats.ts";
import { Answer, indexedTarget, queryOf, refOf } from "./targets.ts";

/** An output file given on the command line. */
export interface ViewedFile {
  readonly path: string;
  readonly format: FormatV1;
}

/** What the routes read from. */
export interface ViewSources {
  readonly jobs: JobStore;
  readonly files: readonly ViewedFile[];
  readonly indexes: RowIndexes;
  readonly registry: Registry;
  readonly context: PluginContext;
  /** The directory paths are shown relative to. */
  readonly cwd: string;
  /** Set by `--actions`: the jobs page's Fetch, Cancel and Retry (cli/view/actions.ts). */
  readonly actions?: ActionSettings;
}

/** The page's files, served as they are (no build step). */
const ASSETS: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
  "dom.js": "text/javascript; charset=utf-8",
  "charts.js": "text/javascript; charset=utf-8",
  "pictures.js": "text/javascript; charset=utf-8",
  "compare.js": "text/javascript; charset=utf-8",
  "actions.js": "text/javascript; charset=utf-8",
  "input.js": "text/javascript; charset=utf-8",
  "runs.js": "text/javascript; charset=utf-8",
};

/** Reads the page's files from `assets/` beside this module (in the sources and in dist/). */
export async function loadAssets(): Promise<Map<string, string>> {
  const assets = new Map<string, string>();
  for (const name of Object.keys(ASSETS)) {
    assets.set(name, await readFile(new URL(`./assets/${name}`, import.meta.url), "utf8"));
  }
  return assets;
}

/** The Hono app of one viewer. `port()` is the port it ended up on (known once listening). */
export function createApp(
  sources: ViewSources,
  assets: ReadonlyMap<string, string>,
  token: string,
  port: () => number,
): Hono {
  const app = new Hono();
  app.use("*", guard(token, port, sources.actions !== undefined));

  const asset = (c: Context, name: string) =>
    c.body(assets.get(name)!, 200, { "content-type": ASSETS[name] });
  app.get("/", (c) => asset(c, "index.html"));
  app.get("/assets/:name", (c) => {
    const name = c.req.param("name");
    return name in ASSETS && name !== "index.html" ? asset(c, name) : c.notFound();
  });

  app.get("/api/jobs", async (c) => {
    const { jobs, problems } = await listShownJobs(sources.jobs, sources.cwd);
    const files = await Promise.all(sources.files.map(async (f, i) => ({
      n: i,
      path: displayPath(f.path, sources.cwd),
      format: f.format.name,
      size: (await stat(f.path).catch(() => undefined))?.size ?? null,
    })));
    const runs = await listShownRuns(sources.jobs.storage, sources.cwd);
    const actions = sources.actions !== undefined;
    return c.json({ store: sources.jobs.location, jobs, runs, problems, files, actions });
  });

  app.get("/api/runs/:run", async (c) => {
    const id = c.req.param("run");
    const run = await shownRun(sources.jobs.storage, id, sources.cwd);
    if (!run) {
      throw new Answer(404, `no sync run ${JSON.stringify(id)} in ${sources.jobs.location}`);
    }
    return c.json(run);
  });
  if (sources.actions) registerActions(app, sources, sources.actions, token);
  registerInputRows(app, sources);

  const indexOf = (c: Context) => indexedTarget(sources, refOf(c));

  for (const base of ["/api/files/:file", "/api/jobs/:id", "/api/runs/:run"]) {
    app.get(`${base}/rows`, async (c) => {
      const query = queryOf(c);
      const { title, format, index, job } = await indexOf(c);
      let page;
      try {
        page = await index.page(query);
      } catch (error) {
        if (error instanceof RangeError) throw new Answer(400, error.message);
        throw error;
      }
      const request = requestsOf(job);
      const rows = request
        ? page.rows.map((r) => r.status === "corrupt" ? r : { ...r, request: request(r.fields) })
        : page.rows;
      return c.json({ title, format: format.name, ...page, rows });
    });
    app.get(`${base}/rows/:n`, async (c) => {
      const n = Number(c.req.param("n"));
      const { title, index, job } = await indexOf(c);
      const row = Number.isInteger(n) ? await index.row(n) : undefined;
      if (!row) throw new Answer(404, `no row ${c.req.param("n")} in ${title}`);
      const request = row.status === "corrupt" ? undefined : requestsOf(job)?.(row.fields, true);
      return c.json({ title, row: request ? { ...row, request } : row });
    });
    app.get(`${base}/stats`, (c) => statsRoute(c, sources));
  }

  registerCompare(app, sources);

  app.notFound((c) => c.json({ error: `no such page: ${c.req.path}` }, 404));
  app.onError((error, c) => {
    if (error instanceof Answer) return c.json({ error: error.message }, error.status);
    return c.json({ error: errorMessage(error) }, 500);
  });
  return app;
}
