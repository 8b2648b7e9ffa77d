/**
 * `loom view --actions` fixtures: one more echo batch job in a {@link ViewFixture}'s store, and a
 * viewer started with the actions on.
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startViewer, type Viewer } from "../../cli/commands/view.ts";
import { runCli } from "./run-cli.ts";
import { VIEW_SECRETS, type ViewFixture } from "./view.ts";

/**
 * Submits a job of the fixture's six rows with the echo provider in two batches that end after
 * `polls` status checks (0: by the first one); returns its id. Its output is `NAME.csv`.
 */
export async function submitEchoJob(
  fixture: ViewFixture,
  name: string,
  polls: number,
): Promise<string> {
  writeFileSync(
    join(fixture.dir, `${name}.yaml`),
    "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: echo-1\n" +
      `provider_options: { batch_polls: ${polls} }\noutput: { path: ${name}.csv }\n` +
      "batch: { max_requests: 3 }\n",
  );
  const result = await runCli(["run", `${name}.yaml`, "--api-key", VIEW_SECRETS.flag], {
    cwd: fixture.dir,
    env: fixture.env,
  });
  const id = /submitted job (\S+):/.exec(result.stdout)?.[1];
  if (result.code !== 0 || !id) {
    throw new Error(`loom run ${name}.yaml exited ${result.code}: ${result.stderr}`);
  }
  return id;
}

/** A viewer on the fixture's store with `--actions`, given the `--api-key` of the fixture's runs. */
export function actionViewerOn(fixture: ViewFixture): Promise<Viewer> {
  return startViewer({
    targets: [],
    env: fixture.env,
    cwd: fixture.dir,
    actions: true,
    apiKey: VIEW_SECRETS.flag,
  });
}
