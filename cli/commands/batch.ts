/**
 * The batch job commands: `fetch`, `list`, `status`, `cancel`, `retry` and `forget`. The work is
 * in core/batch/jobs.ts; this renders it.
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { STATE_MEANING } from "../../core/batch/fetch.ts";
import {
  adoptBatch,
  cancelJob,
  fetchJobs,
  forgetJob,
  type JobCommandOptions,
  jobStatus,
  listJobs,
  retryJob,
} from "../../core/batch/jobs.ts";
import { phaseOf } from "../../core/batch/shard.ts";
import type { JobRecord } from "../../core/batch/store.ts";
import { errorMessage, EXIT, LoomError, systemFaultMessage } from "../../core/base/errors.ts";
import type { RunSummary } from "../../core/base/events.ts";
import { displayPath } from "../../core/base/paths.ts";
import { exitCodeFor } from "../../core/commands/run.ts";
import { usd } from "../../core/commands/estimate.ts";
import { isInteractive, loomHome } from "../../core/base/runtime.ts";
import { askYesNo } from "../ask.ts";
import { listRuns } from "../../core/run/record.ts";
import { withState } from "../../core/run/open.ts";
import { showRun } from "../view/runs.ts";
import { createProgress, formatDuration, liveStyle } from "../progress.ts";

const out = (line = "") => process.stdout.write(`${line}\n`);

/** How long ago an ISO time was, in words (`3m`, `2h`, `4d`). */
function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** `loom list --runs`: the recorded sync runs, oldest first, as a table or JSON lines. */
async function printRuns(json = false): Promise<void> {
  const runs = await withState(
    {},
    async (store) => store.runs ? (await listRuns(store.runs)).reverse() : [],
  );
  if (json) {
    for (const r of runs) {
      out(JSON.stringify({ ...showRun(r, process.cwd()), perMinute: r.perMinute }));
    }
    return;
  }
  if (!runs.length) {
    out("no sync runs recorded");
    return;
  }
  const rows = runs.map((record) => {
    const r = showRun(record, process.cwd());
    return [
      r.id,
      r.provider,
      r.model,
      r.input,
      r.status,
      `${r.answered} ok, ${r.failed} failed of ${r.rows}`,
      r.cost === null ? "" : usd(r.cost),
      age(r.startedAt),
    ];
  });
  const head = ["ID", "PROVIDER", "MODEL", "INPUT", "STATUS", "ROWS", "COST", "AGE"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const line of [head, ...rows]) {
    out(line.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
  }
}

/** One word for a job: `submitting`, `merged`, or its shards' states (`2 completed, 1 in_progress`). */
export function jobState(record: JobRecord): string {
  if (record.status !== "pending") return record.status;
  const counts = new Map<string, number>();
  for (const s of record.shards) {
    counts.set(s.state ?? "unknown", (counts.get(s.state ?? "unknown") ?? 0) + 1);
  }
  return [...counts].map(([state, n]) => (record.shards.length === 1 ? state : `${n} ${state}`))
    .join(", ") || "completed";
}

/** Prints a job and each of its batches, with what each state means. */
function printJob(record: JobRecord): void {
  const { spec } = record;
  out(
    `job ${record.id}: ${spec.provider} ${spec.model}, ${record.rows} rows from ${
      displayPath(record.input.path)
    } → ${displayPath(record.output)}`,
  );
  for (const s of record.shards) {
    const phase = phaseOf(s);
    // Before the provider has the batch, its phase is all there is to say; after, its state.
    const state = phase === "in-doubt" || phase === "submitting" || phase === "planned"
      ? PHASE_NAMES[phase]
      : s.state ?? "unknown";
    const meaning = state === "in doubt"
      ? `its create was sent at ${s.createSentAt} and no answer came: run the job again (Loom looks for it first), or \`loom adopt ${record.id} <batch-id>\`.`
      : state === "submitting"
      ? "Loom was stopped while submitting this batch; run the job again to finish."
      : state === "not sent"
      ? "Loom has not sent this batch yet (the submission stopped before it); run the job again to send it."
      : STATE_MEANING[state as keyof typeof STATE_MEANING] ?? "";
    const done = s.counts?.total
      ? ` (${s.counts.succeeded ?? 0}/${s.counts.total} done${
        s.counts.failed ? `, ${s.counts.failed} failed` : ""
      })`
      : "";
    const extra = s.message ? ` ${s.message}` : "";
    out(`  batch ${s.index + 1} ${s.handle?.id ?? "-"}  ${state}${done}  ${meaning}${extra}`);
  }
}

/**
 * A job as `list --json` and `status --json` print it. `detail` adds each batch's phase (as
 * `status` shows it: `not sent`, `submitting`, `in doubt`, `submitted`, `ended`, `fetched`) and
 * its message.
 */
function jobJson(r: JobRecord, detail = false) {
  return {
    id: r.id,
    provider: r.spec.provider,
    model: r.spec.model,
    input: r.input.path,
    output: r.output,
    rows: r.rows,
    status: jobState(r),
    shards: r.shards.map((s) => ({
      batch: s.handle?.id ?? null,
      state: s.state ?? null,
      ...(detail ? { phase: PHASE_NAMES[phaseOf(s)], message: s.message ?? null } : {}),
      requests: s.requests,
      counts: s.counts ?? null,
    })),
    merged: r.merged ?? null,
    createdAt: r.createdAt,
  };
}

/** A batch's phase in the words `status` uses. */
export const PHASE_NAMES: Readonly<Record<ReturnType<typeof phaseOf>, string>> = {
  planned: "not sent",
  submitting: "submitting",
  "in-doubt": "in doubt",
  submitted: "submitted",
  ended: "ended",
  fetched: "fetched",
  "cancelled-unsent": "cancelled before it was sent",
};

function summaryLine(summary: RunSummary): string {
  return `wrote ${
    displayPath(summary.output!)
  }: ${summary.rows} rows (${summary.ok} answered, ${summary.errors} failed) in ${
    formatDuration(summary.elapsedMs / 1000)
  }`;
}

/** Options every batch command takes. */
interface CommonFlags {
  apiKey?: string;
  json?: boolean;
}

/** Flags of `loom fetch`. */
interface FetchFlags extends CommonFlags {
  id?: string[];
  /** `--all` (every pending job, the default), `--no-all` (only the most recent one). */
  all?: boolean;
  keep?: boolean;
  /** Overwrite an existing output without asking. */
  force?: boolean;
  /** Merge although the input changed since submission. */
  inputChanged?: boolean;
  wait?: boolean;
  poll?: string;
}

/** The core's options for a batch command (`--force` is the core's `overwrite`). */
function optionsOf(flags: FetchFlags, onEvent?: JobCommandOptions["onEvent"]): JobCommandOptions {
  const poll = flags.poll === undefined ? undefined : Number(flags.poll);
  if (poll !== undefined && !(poll > 0)) {
    throw new LoomError("--poll takes a number of seconds greater than 0", {
      exitCode: EXIT.usage,
    });
  }
  const options: JobCommandOptions = {
    apiKey: flags.apiKey,
    force: flags.force,
    overwrite: flags.force,
    mergeAnyway: flags.inputChanged,
    keep: flags.keep,
    wait: flags.wait,
    ...(poll === undefined ? {} : { pollMs: poll * 1000 }),
    ...(onEvent ? { onEvent } : {}),
  };
  return options;
}

/** The job ids a fetch works on: those named, every pending job (`--all`), or the latest (`--no-all`). */
async function fetchIds(flags: FetchFlags): Promise<string[]> {
  if (flags.id?.length) {
    if (flags.all !== undefined) {
      throw new LoomError("give --id or --all/--no-all, not both", { exitCode: EXIT.usage });
    }
    return flags.id;
  }
  if (flags.all !== false) return [];
  // The seed's flag, whose meaning is not on record here: "not every pending job" is taken as
  // the one submitted last, the job a user who just ran `loom JOB.yaml` means.
  const { records } = await listJobs({});
  // Records are listed oldest first.
  const latest = records.filter((r) => r.status !== "merged").at(-1);
  return latest ? [latest.id] : [];
}

/** Registers the batch commands on the program. */
export function registerBatch(program: Command): void {
  program
    .command("fetch")
    .description("check pending batch jobs; merge every job whose batches have all ended")
    .option(
      "-i, --id <id...>",
      "a job id (or a unique prefix, or a provider batch id); default every pending job",
    )
    .option("-a, --all", "every pending job (the default without --id)")
    .option("--no-all", "only the most recently submitted pending job")
    .option(
      "-k, --keep",
      "keep the job's record after merging (it is removed once every row has an answer)",
    )
    .option("--force", "overwrite an existing output file without asking")
    .option(
      "--input-changed",
      "merge even though the input changed since submission (rows are matched by position)",
    )
    .option("--wait", "poll until the batches have ended, then merge")
    .option("--poll <seconds>", "seconds between polls with --wait (default 30)")
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--json", "print the outcome of each job as a JSON line")
    .addHelpText(
      "after",
      "\nExamples:\n  loom fetch                     every pending job\n  loom fetch -i JOB_ID -k --wait  one job: wait for it, merge, keep its record\n  loom fetch --no-all            the job submitted last",
    )
    .action(async (flags: FetchFlags) => {
      const ids = await fetchIds(flags);
      if (flags.all === false && !ids.length) {
        if (!flags.json) out("no pending batch jobs (see loom list)");
        return;
      }
      const progress = createProgress(flags.json ? "none" : liveStyle());
      let results;
      // Same overwrite rule as run: ask on a terminal, refuse elsewhere, --force overwrites.
      const confirmOverwrite = isInteractive()
        ? (
          path: string,
        ) => (progress.stop(), askYesNo(`${displayPath(path)} exists. Overwrite it?`))
        : undefined;
      try {
        results = await fetchJobs(ids, { ...optionsOf(flags, progress.onEvent), confirmOverwrite });
      } finally {
        progress.stop();
      }
      if (!results.length && !flags.json) out("no pending batch jobs (see loom list)");
      let failed = false;
      for (const result of results) {
        if ("error" in result) {
          failed = true;
          if (LoomError.isInstance(result.error)) {
            process.exitCode = Math.max(Number(process.exitCode ?? 0), result.error.exitCode);
          }
          // A disk fault (a read-only or full LOOM_HOME) in the words of every operational fault.
          const message = LoomError.isInstance(result.error)
            ? result.error.message
            : systemFaultMessage(result.error, loomHome(process.env)) ??
              errorMessage(result.error);
          if (flags.json) out(JSON.stringify({ id: result.record.id, error: message }));
          else process.stderr.write(`loom: job ${result.record.id}: ${message}\n`);
          continue;
        }
        // The exit code says the same with or without --json (1: every row failed).
        if (result.summary && exitCodeFor(result.summary) !== EXIT.ok) failed = true;
        if (flags.json) {
          out(
            JSON.stringify({
              id: result.record.id,
              status: jobState(result.record),
              summary: result.summary ?? null,
              removed: result.removed ?? false,
            }),
          );
          continue;
        }
        if (result.alreadyMerged) {
          out(
            `job ${result.record.id} is already merged into ${displayPath(result.record.output)}`,
          );
          continue;
        }
        printJob(result.record);
        if (result.summary) {
          out(summaryLine(result.summary));
          if (result.summary.cost !== undefined) {
            out(`  cost reported by the provider: ${usd(result.summary.cost)}`);
          }
          const retryable = result.record.merged?.retryable ?? result.summary.errors;
          if (result.summary.errors > 0) {
            out(`  ${result.summary.errors} row(s) failed (reasons in llm_error)`);
          }
          if (retryable > 0) {
            out(
              `  \`loom retry ${result.record.id}\` submits the ${retryable} that a retry could fix`,
            );
          } else if (result.uploadsLeft) {
            out(
              `  the job's record is kept until its uploaded input file is deleted; the next \`loom fetch\`, or \`loom forget ${result.record.id}\`, tries again`,
            );
          } else if (!result.removed) {
            out(
              `  the job's record is kept (--keep); \`loom forget ${result.record.id}\` removes it`,
            );
          }
        }
      }
      if (failed) process.exitCode = Math.max(Number(process.exitCode ?? 0), EXIT.failed);
    });

  program
    .command("list")
    .description("list batch jobs: id, provider, model, input, batches, status, rows, age")
    .option("--json", "print each job as a JSON line")
    .option("--runs", "list the recorded sync runs instead (see loom view)")
    .action(async (flags: { json?: boolean; runs?: boolean }) => {
      if (flags.runs) return await printRuns(flags.json);
      const { records, problems } = await listJobs({});
      for (const problem of problems) process.stderr.write(`loom: ${problem}\n`);
      if (flags.json) {
        for (const r of records) out(JSON.stringify(jobJson(r)));
        return;
      }
      if (!records.length) {
        out("no batch jobs");
        return;
      }
      const rows = records.map((r) => [
        r.id,
        r.spec.provider,
        r.spec.model,
        displayPath(r.input.path),
        String(r.shards.length),
        jobState(r),
        r.merged ? `${r.merged.ok} ok, ${r.merged.errors} failed` : `${r.rows}`,
        age(r.createdAt),
      ]);
      const head = ["ID", "PROVIDER", "MODEL", "INPUT", "BATCHES", "STATUS", "ROWS", "AGE"];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      for (const line of [head, ...rows]) {
        out(line.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
      }
    });

  program
    .command("status")
    .description("check a batch job's batches with the provider (without merging)")
    .argument("<id>", "job id, or a provider batch id")
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--json", "print the job as one JSON object (as list --json, with each batch's phase)")
    .action(async (id: string, flags: CommonFlags) => {
      const record = await jobStatus(id, optionsOf(flags));
      if (flags.json) out(JSON.stringify(jobJson(record, true)));
      else {
        printJob(record);
        // Known once merged (a job kept after its merge: --keep, or rows a retry could fix).
        const cost = record.merged?.cost;
        if (cost !== undefined) out(`  cost reported by the provider: ${usd(cost)}`);
      }
    });

  program
    .command("cancel")
    .description("ask the provider to cancel a job's batches; a later fetch keeps what finished")
    .argument("<id>", "job id, or a provider batch id")
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--json", "print the outcome as one JSON object")
    .action(async (id: string, flags: CommonFlags) => {
      const warn: JobCommandOptions["onEvent"] = (event) => {
        if (event.type === "warning") process.stderr.write(`loom: warning: ${event.message}\n`);
      };
      const { record, failed } = await cancelJob(id, optionsOf(flags, warn));
      if (failed.length) process.exitCode = EXIT.failed;
      if (flags.json) {
        out(JSON.stringify({
          id: record.id,
          status: jobState(record),
          // Batches numbered from 1, as the text output and `loom status` number them.
          failed: failed.map((f) => ({ batch: f.shard + 1, error: f.error })),
        }));
        return;
      }
      printJob(record);
      for (const f of failed) {
        process.stderr.write(`loom: batch ${f.shard + 1} could not be cancelled: ${f.error}\n`);
      }
      out(
        `cancellation requested; \`loom fetch --id ${record.id}\` merges what finished once the batches have ended`,
      );
    });

  program
    .command("retry")
    .description(
      "submit again only the rows of a fetched job that failed, expired or were cancelled",
    )
    .argument("<id>", "job id, or a provider batch id")
    .option("--api-key <key>", "API key (default: the provider's environment variable)")
    .option("--json", "print the outcome as one JSON object (rows: how many were submitted again)")
    .action(async (id: string, flags: CommonFlags) => {
      const { record, rows } = await retryJob(id, optionsOf(flags));
      if (flags.json) {
        out(JSON.stringify({ id: record.id, status: jobState(record), rows }));
        return;
      }
      if (!rows) {
        out(`job ${record.id}: every row has an answer; nothing to retry`);
        return;
      }
      out(
        `job ${record.id}: submitted ${rows} row(s) again; \`loom fetch --id ${record.id}\` merges them once done`,
      );
    });

  program
    .command("adopt")
    .description(
      "settle a batch whose submission was cut off: it is BATCH_ID, or (--none) it was never created",
    )
    .argument("<id>", "job id")
    .argument("[batch-id]", "the provider's batch id that is the lost batch")
    .option("--none", "no batch was created: the next run of the job submits it")
    .option("--json", "print the outcome as one JSON object (batch: the adopted id, or null)")
    .action(
      async (
        id: string,
        batchId: string | undefined,
        flags: { none?: boolean; json?: boolean },
      ) => {
        if ((batchId === undefined) === !flags.none) {
          throw new LoomError("give the batch id, or --none (not both)", { exitCode: EXIT.usage });
        }
        const record = await adoptBatch(id, batchId, {});
        if (flags.json) {
          out(JSON.stringify({ id: record.id, status: jobState(record), batch: batchId ?? null }));
          return;
        }
        out(
          batchId
            ? `job ${record.id}: adopted ${batchId}`
            : `job ${record.id}: the batch will be submitted on the next run of the job`,
        );
      },
    );

  program
    .command("forget")
    .description("remove a batch job's record (and its saved results) from the state store")
    .argument("<id>", "job id, or a provider batch id")
    .option(
      "--force",
      "forget a job that is not merged yet (its batches are not cancelled), or whose uploaded input files cannot be deleted",
    )
    .option(
      "--api-key <key>",
      "API key, to delete the job's uploads (default: the provider's environment variable)",
    )
    .option("--json", "print the outcome as one JSON object (uploadsLeft: what is left to delete)")
    .action(async (id: string, flags: { force?: boolean; apiKey?: string; json?: boolean }) => {
      const { record, uploadsLeft } = await forgetJob(id, {
        force: flags.force,
        apiKey: flags.apiKey,
      });
      if (flags.json) {
        out(JSON.stringify({ id: record.id, forgotten: true, uploadsLeft }));
        return;
      }
      for (const line of uploadsLeft) process.stderr.write(`loom: ${line}\n`);
      out(`forgot job ${record.id}`);
    });
}
