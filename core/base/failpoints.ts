/**
 * Failpoints: a test aid that kills Loom at an exact step, the way a crash or `kill -9` would,
 * so the crash tests can prove that a rerun loses nothing and pays for nothing twice. With
 * `LOOM_FAILPOINT=<name>` (or `<name>@<n>`, the n-th time) the process kills itself with SIGKILL
 * when it reaches that step. The variable is read once, when Loom starts (a failpoint is passed
 * at a million rows: an environment lookup each was 2–4% of a merge); unset, a failpoint costs one
 * comparison.
 *
 * Steps: `submit:planned`, `submit:uploaded` (a provider's file is uploaded, the batch not yet
 * created), `submit:created` (the batch exists, the record does not know it), `submit:recorded`,
 * `fetch:saving` (each result line saved), `fetch:saved` (a shard's results saved, the record not
 * yet updated), `fetch:merging` (each row merged), `fetch:merged` (the output written, the record
 * not yet updated), `fetch:cleanup` (the record marked merged, not yet removed),
 * `fetch:removing` (just before the record, its results and ids are removed in one step);
 * the SQLite store's `sqlite:results-written` (a result set's file written, the set not yet
 * saved) and `sqlite:job-removed` (a job's rows removed, its result files not yet).
 * @module
 */
import process from "node:process";

const hits = new Map<string, number>();
/** `LOOM_FAILPOINT` as the process started with it. */
const wanted = process.env.LOOM_FAILPOINT;

/** Kills the process here when `LOOM_FAILPOINT` names this step (and its count is reached). */
export function failpoint(name: string): void {
  if (!wanted || !wanted.startsWith(name)) return;
  const [step, nth] = wanted.split("@");
  if (step !== name) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  if (count >= Number(nth ?? 1)) process.kill(process.pid, "SIGKILL");
}
