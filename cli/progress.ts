/**
 * Renders run events: a live bar on a terminal (done/total, cache hits, errors, rate, ETA),
 * plain lines every few seconds otherwise (logs, CI, `NO_COLOR`), or JSON lines with `--json`.
 * @module
 */
import process from "node:process";
import { Presets, SingleBar } from "cli-progress";
import type { RunEvent, RunEventHandler } from "../core/base/events.ts";
import { displayPath } from "../core/base/paths.ts";

/** How progress is shown. */
export type ProgressStyle = "bar" | "lines" | "json" | "none";

/**
 * How progress shows on standard error when it is live: a bar on a terminal, plain lines elsewhere.
 * Loom prints no colour; its only terminal escapes draw the bar (and rewrite the poll line), so
 * `NO_COLOR` (any non-empty value, https://no-color.org) means plain lines on a terminal too.
 */
export function liveStyle(
  isTTY: boolean | undefined = process.stderr.isTTY,
  env: Readonly<Record<string, string | undefined>> = process.env,
): "bar" | "lines" {
  return isTTY && !env.NO_COLOR ? "bar" : "lines";
}

/** Seconds between plain progress lines (`LOOM_PROGRESS_INTERVAL`, default 10). */
function lineInterval(): number {
  const value = Number(process.env.LOOM_PROGRESS_INTERVAL);
  return Number.isFinite(value) && value > 0 ? value : 10;
}

/** `83s` → `1m23s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Counts and a rate over a sliding window of recent samples. */
class Tally {
  total = 0;
  done = 0;
  cached = 0;
  errors = 0;
  readonly started = Date.now();
  readonly #samples: Array<[number, number]> = [];

  record(event: Extract<RunEvent, { type: "row" }>) {
    this.done++;
    if (event.outcome === "cached") this.cached++;
    if (event.outcome === "error") this.errors++;
  }

  /** Rows per second over the last ~30 s. */
  rate(): number {
    const now = Date.now();
    const last = this.#samples.at(-1);
    if (!last || now - last[0] >= 250) this.#samples.push([now, this.done]);
    while (this.#samples.length > 2 && now - this.#samples[0][0] > 30_000) this.#samples.shift();
    const [t0, d0] = this.#samples[0];
    const dt = (now - t0) / 1000;
    return dt > 0 ? (this.done - d0) / dt : this.done / Math.max((now - this.started) / 1000, 1e-3);
  }

  line(): string {
    const rate = this.rate();
    const pct = this.total ? Math.floor((this.done / this.total) * 100) : 100;
    const eta = rate > 0 ? formatDuration((this.total - this.done) / rate) : "?";
    return `${this.done}/${this.total} rows (${pct}%) | cached ${this.cached} | errors ${this.errors} | ${
      rate.toFixed(1)
    } rows/s | ETA ${eta}`;
  }
}

/** Creates an event handler for the chosen style, and a `stop` that clears what it drew. */
export function createProgress(
  style: ProgressStyle,
): { onEvent: RunEventHandler; stop: () => void } {
  const err = (line: string) => process.stderr.write(`${line}\n`);
  if (style === "json") {
    return {
      onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
      stop: () => {},
    };
  }
  const tally = new Tally();
  let bar: SingleBar | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  const onEvent: RunEventHandler = (event) => {
    switch (event.type) {
      case "plan":
        tally.total = event.rows;
        if (style === "none") return;
        err(
          `loom: ${event.rows} row${event.rows === 1 ? "" : "s"} from ${
            displayPath(event.input)
          } (${event.mode}) → ${displayPath(event.output)}`,
        );
        // A batch job's rows arrive all at once at the merge: its progress is its batches'.
        if (event.mode === "batch") return;
        if (style === "bar") {
          bar = new SingleBar({
            stream: process.stderr,
            format:
              " {bar} {value}/{total} | cached {cached} | errors {errors} | {rate} rows/s | ETA {eta_formatted}",
            hideCursor: true,
            etaBuffer: 200,
            fps: 8,
          }, Presets.shades_classic);
          bar.start(event.rows, 0, { cached: 0, errors: 0, rate: "0.0" });
        } else if (style === "lines") {
          timer = setInterval(() => err(`loom: ${tally.line()}`), lineInterval() * 1000);
          timer.unref?.();
        }
        return;
      case "row":
        tally.record(event);
        bar?.update(tally.done, {
          cached: tally.cached,
          errors: tally.errors,
          rate: tally.rate().toFixed(1),
        });
        return;
      case "shard":
        if (style !== "none") {
          err(
            `loom: batch ${
              event.shard + 1
            } ${event.action} as ${event.batchId} (${event.requests} ${
              event.requests === 1 ? "request" : "requests"
            })`,
          );
        }
        return;
      case "poll": {
        if (style === "none") return;
        const ended =
          event.shards.filter((s) =>
            ["completed", "failed", "expired", "cancelled"].includes(s.state)
          ).length;
        const done = event.shards.reduce((n, s) => n + (s.done ?? 0), 0);
        const total = event.shards.reduce((n, s) => n + (s.total ?? 0), 0);
        const states = [...new Set(event.shards.map((s) => s.state))].join(", ") ||
          "nothing to wait for";
        const line = `job ${event.job}: ${ended}/${event.shards.length} batches ended` +
          (total ? `, ${done}/${total} requests done` : "") + ` (${states})`;
        if (style === "bar" && process.stderr.isTTY) {
          process.stderr.write(`\r\x1b[2K${line}${ended === event.shards.length ? "\n" : ""}`);
        } else err(`loom: ${line}`);
        return;
      }
      case "warning":
        if (style !== "none") err(`loom: warning: ${event.message}`);
        return;
      case "note":
        if (style !== "none") err(`loom: note: ${event.message}`);
        return;
      case "done":
        stop();
        return;
    }
  };
  return { onEvent, stop };
}
