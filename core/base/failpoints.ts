/**
 * Failpoints: a test aid that kills Loom at an exact step, the way a crash or `kill -9` would,
 * so the crash tests can prove that a rerun loses nothing and pays for nothing twice. With
 * `LOOM_FAILPOINT=<name>` (or `<name>@<n>`, the n-th time) the process kills itself with SIGKILL
 * when it reaches that step. Unset, a failpoint costs one environment lookup.
 *
 * Steps: `submit:planned`, `submit:uploaded` (a provider's file is uploaded, the batch not yet
 * created), `submit:created` (the batch exists, the record does not know it), `submit:recorded`,
 * `fetch:saving` (each result line saved), `fetch:saved` (a shard's results saved, the record not
 * yet updated), `fetch:merging` (each row merged), `fetch:merged` (the output written, the record
 * not yet updated), `fetch:cleanup` (the record marked merged, not yet removed),
 * `fetch:removing` (just before the record, its results and ids are removed in one step).
 * @module
 */
import process from "node:process";

const hits = new Map<string, number>();

/** Kills the process here when `LOOM_FAILPOINT` names this step (and its count is reached). */
export function failpoint(name: string): void {
  const wanted = process.env.LOOM_FAILPOINT;
  if (!wanted || !wanted.startsWith(name)) return;
  const [step, nth] = wanted.split("@");
  if (step !== name) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  if (count >= Number(nth ?? 1)) process.kill(process.pid, "SIGKILL");
}
