// loom view --actions: the jobs page's Fetch, Cancel and Retry buttons. Each opens a dialog saying
// what it will do and what it may cost; only its Confirm sends the POST, with the token in the
// X-Loom-Token header (the server refuses an action without it) and {"confirm": true}.

import { api, el, fmt } from "./dom.js";

let token;
/** The last action's answer, shown above the jobs until the next one. */
let outcome;

/** What each action does and costs, in the dialog's words. */
const ACTIONS = {
  fetch: {
    label: "Fetch",
    title: (job) => `Fetch job ${job.id}?`,
    does: (job) =>
      `Checks the job's ${job.shards.length} batch(es) with ${job.provider}; once all have ended, ` +
      `downloads their results and merges them into ${job.output}. The job stays on this page.`,
    costs: () =>
      "Nothing new is paid for: the batches are sent already. (A submission that was cut off is " +
      "finished first, as loom fetch does: Loom looks for the batch before sending anything.)",
  },
  cancel: {
    label: "Cancel job",
    title: (job) => `Cancel job ${job.id}?`,
    does: (job) =>
      `Asks ${job.provider} to cancel the job's batches that have not ended; batches not sent yet ` +
      "are never sent. A later Fetch merges the rows that finished; the others can be retried.",
    costs: () =>
      "Requests the provider already finished may still be billed; cancelling cannot be undone.",
  },
  retry: {
    label: "Retry failed",
    title: (job) => `Retry the failed rows of job ${job.id}?`,
    does: (job) =>
      `Sends the rows without a good answer (${fmt(job.failed)} failed) again, as new batches of ` +
      "the same job; a row with an answer is never sent again. Fetch merges them once done.",
    costs: (job) =>
      `This is a new paid batch: about ${
        fmt(job.failed)
      } more request(s) billed by ${job.provider}.`,
  },
};

/** The actions a job offers now: Fetch and Cancel while it is not merged, Retry after. */
function offered(job) {
  if (job.active) return ["fetch", "cancel"];
  return job.failed > 0 ? ["retry"] : [];
}

/**
 * The jobs table's cell of a job's action buttons; `redraw` draws the page again after one and
 * returns a promise of the drawing.
 */
export function actionCell(job, redraw) {
  return el(
    "td",
    { class: "actions" },
    offered(job).map((name) =>
      el("button", {
        type: "button",
        "data-action": name,
        onclick: () => confirmAction(name, job, redraw),
      }, ACTIONS[name].label)
    ),
  );
}

/** The last action's outcome, for the top of the jobs page (nothing before the first). */
export function actionNotice() {
  if (!outcome) return "";
  const { ok, text, warnings } = outcome;
  return el(
    "div",
    { class: `notice action-outcome${ok ? "" : " bad"}`, role: "status" },
    el("p", {}, text),
    warnings.map((w) => el("p", { class: "muted" }, `warning: ${w}`)),
  );
}

function confirmAction(name, job, redraw) {
  const action = ACTIONS[name];
  const status = el("p", { class: "muted", role: "status" });
  const confirm = el("button", { type: "submit", class: "primary" }, "Confirm");
  const dismiss = el("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
  const dialog = el(
    "dialog",
    { class: "confirm", "data-action": name },
    el(
      "form",
      {
        method: "dialog",
        onsubmit: async (e) => {
          e.preventDefault();
          confirm.disabled = dismiss.disabled = true;
          status.textContent = "Working… (this waits for the provider)";
          outcome = await send(name, job.id);
          // The dialog goes once the page shows the outcome, never over the last one's notice.
          await redraw();
          dialog.close();
        },
      },
      el("h2", {}, action.title(job)),
      el("p", {}, action.does(job)),
      el("p", { class: "cost" }, action.costs(job)),
      status,
      el("div", { class: "buttons" }, confirm, dismiss),
    ),
  );
  // Once sent, the action is not the page's to stop: Escape does not hide it.
  dialog.addEventListener("cancel", (e) => confirm.disabled && e.preventDefault());
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  dismiss.focus();
}

/** Sends an action; its answer (or refusal) as the notice shows it. */
async function send(name, id) {
  try {
    token ??= (await api("/api/actions")).token;
    const response = await fetch(`/api/jobs/${encodeURIComponent(id)}/actions/${name}`, {
      method: "POST",
      headers: {
        accept: "application/json",
        "content-type": "application/json",
        "x-loom-token": token,
      },
      body: JSON.stringify({ confirm: true }),
    });
    const body = await response.json().catch(() => ({ error: `${response.status}` }));
    if (!response.ok) return { ok: false, text: body.error ?? `${response.status}`, warnings: [] };
    return { ok: true, text: body.message, warnings: body.warnings ?? [] };
  } catch (error) {
    return { ok: false, text: String(error.message ?? error), warnings: [] };
  }
}
