// Overview: the job, the running cycle with its live progress, held deletions with "Allow
// deletes", the last cycles, real-time health and GoTo seats. The status is read every 2 s
// while a cycle runs (the engine checkpoints at least every 3 s), every 10 s otherwise.

import { get, post } from "./api.js";
import { $, announce, badge, busy, clear, confirmAction, counts, duration, el, errorBlock, table, time } from "./ui.js";

const FAST = 2000;
const SLOW = 10000;
const SIDE = 60000;
let timer = null;
let sideTimer = null;
let active = false;
let wasRunning = null;
let last = null;

export function mount() {
  $("#allow-form").addEventListener("submit", allowDeletes);
  $("#overview-refresh").addEventListener("click", (event) => busy(event.currentTarget, refreshSide));
}

export function enter() {
  active = true;
  poll();
  refreshSide();
  sideTimer = window.setInterval(refreshSide, SIDE);
}

export function leave() {
  active = false;
  window.clearTimeout(timer);
  window.clearInterval(sideTimer);
}

async function poll() {
  window.clearTimeout(timer);
  let running = false;
  try {
    const doc = await get("overview");
    last = doc;
    render(doc);
    running = inProgress(doc.currentCycle);
  } catch (error) {
    clear($("#job-facts")).append(el("div", {}, errorBlock(error)));
  }
  if (active) timer = window.setTimeout(poll, running ? FAST : SLOW);
}

function fact(term, ...value) {
  return [el("dt", { text: term }), el("dd", {}, ...value)];
}

function render(doc) {
  const q = $("#quarantine");
  q.hidden = !doc.quarantine;
  if (doc.quarantine) {
    $("#quarantine-reason").textContent = doc.quarantine;
    $("#quarantine-fix").textContent = doc.quarantineFix;
    clear($("#quarantine-since")).append(time(doc.quarantinedSince));
  }
  clear($("#job-facts")).append(
    ...fact("Provisioning", badge(doc.provisioning)),
    ...fact("Schedule", el("code", { text: doc.schedule || "—" })),
    ...fact("Next scheduled cycle", doc.nextRun ? time(doc.nextRun) : el("span", { class: "muted", text: doc.provisioning === "off" ? "none: provisioning is off" : "—" })),
    ...fact("Next cycle kind", doc.watermark ? "Incremental" : "Initial (no watermark)"),
    ...fact("Last successful cycle", time(doc.lastSuccessfulCycle)),
    ...fact("Waiting for a retry", `${doc.escrowed} object(s)`),
  );
  renderCycle(doc.currentCycle, doc.rate);
  renderHeld(doc.heldDeletions);
  renderHistory(doc.recentCycles, doc.lastCycle);
}

// A cycle handed on to its next invocation (time budget spent) is still in progress.
function inProgress(cycle) {
  return cycle?.state === "running" || cycle?.state === "continuing";
}

function renderCycle(cycle, rate) {
  const running = inProgress(cycle);
  $("#cycle-idle").hidden = running;
  $("#cycle-running").hidden = !running;
  if (wasRunning !== null && wasRunning !== running) announce(running ? "A cycle started." : "The cycle ended.");
  wasRunning = running;
  if (!running) {
    const idle = $("#cycle-idle");
    idle.textContent = cycle?.state === "interrupted"
      ? `The ${cycle.kind} cycle started ${new Date(cycle.started).toLocaleString()} was interrupted; the next run resumes it.`
      : "No cycle is running.";
    return;
  }
  $("#cycle-kind").textContent = cycle.kind;
  clear($("#cycle-started")).append(time(cycle.started));
  $("#cycle-initiator").textContent = cycle.initiatedBy;
  const progress = $("#cycle-progress");
  const total = cycle.total || 0;
  if (total > 0) {
    progress.max = total;
    progress.value = cycle.processed;
  } else {
    progress.removeAttribute("value"); // indeterminate while the cycle still reads
  }
  const n = cycle.invocations || 1;
  const handedOn = cycle.state === "continuing" ? `, continuing (handed on after invocation ${n})` : n > 1 ? `, invocation ${n}` : "";
  $("#cycle-count").textContent = `${cycle.processed} / ${total || "?"}${handedOn}`;
  $("#cycle-percent").textContent = cycle.progress === null ? "(reading Entra and GoTo)" : `(${Math.round(cycle.progress * 100)}%)`;
  $("#cycle-rate").textContent = rate && rate.perSecond
    ? `${rate.perSecond} objects/s` + (rate.secondsLeft !== null ? `, about ${duration(rate.secondsLeft)} left` : "")
    : "";
  $("#cycle-counts").textContent = `So far: ${counts(cycle.counts)}`;
}

function renderHeld(held) {
  const card = $("#held");
  card.hidden = !held || held.count === 0;
  if (card.hidden) return;
  clear($("#held-rows")).append(
    ...held.shown.map((h) =>
      el("tr", {}, el("td", { text: h.userName || "—" }), el("td", {}, el("code", { text: h.id })), el("td", { text: h.reason }), el("td", {}, time(h.heldSince))),
    ),
  );
  $("#held-more").textContent = held.count > held.shown.length ? `and ${held.count - held.shown.length} more` : "";
}

function renderHistory(recent, lastCycle) {
  const rows = recent.length ? recent : lastCycle ? [lastCycle] : [];
  const body = clear($("#history-rows"));
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colspan: "8", class: "muted", text: "No cycle has run yet." })));
    return;
  }
  body.append(
    ...rows.map((c) =>
      el(
        "tr",
        {},
        el("td", {}, badge(c.kind, "kind")),
        el("td", { text: c.initiatedBy }),
        el("td", {}, time(c.ended)),
        el("td", { text: duration(c.durationSeconds) }),
        el("td", { text: `${c.processed} / ${c.total}` }),
        el("td", { text: counts(c.countsByAction || {}) }),
        el("td", { text: counts(c.countsByStatus || {}) }),
        el("td", { text: String(c.staged ?? 0) }),
      ),
    ),
  );
}

async function allowDeletes(event) {
  event.preventDefault();
  const now = $("#allow-now").checked;
  const held = last?.heldDeletions?.count ?? 0;
  const ok = await confirmAction(
    "Allow the held deletions?",
    [
      `${held} user(s) will be disabled or deleted in GoTo, whatever the deletion threshold, and their seats released.`,
      now ? "A cycle runs now to carry them out." : "The next cycle carries them out.",
    ],
    "Allow deletes",
  );
  if (!ok) return;
  const result = $("#allow-result");
  await busy(event.submitter || $("#allow-form button"), async () => {
    try {
      const doc = await post("allow-deletes", { now });
      const cycle = doc.cycle ? ` The cycle ran: ${counts(doc.cycle.countsByAction)}.` : "";
      result.textContent = `Deletes allowed (${doc.heldDeletes} held).${cycle}`;
      announce(result.textContent);
    } catch (error) {
      clear(result).append(errorBlock(error));
    }
  });
  poll();
}

async function refreshSide() {
  await Promise.all([loadHealth(), loadSeats()]);
}

async function loadHealth() {
  const box = $("#health");
  try {
    const h = await get("health");
    const subs = h.subscriptions.length
      ? table(
          "Graph subscriptions",
          ["Resource", "State", "Expires"],
          h.subscriptions.map((s) => [el("code", { text: s.resource }), badge(s.state), el("span", {}, time(s.expires), ` (${s.minutesLeft} min)`)]),
        )
      : el("p", { class: "muted", text: "No Graph subscription." });
    const lastNote = h.lastNotification
      ? el("span", {}, time(h.lastNotification.time), ` — ${h.lastNotification.action} ${h.lastNotification.user}`)
      : el("span", { class: "muted", text: `none in the last ${h.lookbackDays} days` });
    const depth = (q) => (q.depth === null ? el("span", { class: "error", text: q.error }) : String(q.depth));
    clear(box).append(
      el(
        "dl",
        { class: "facts" },
        ...fact("Notifications", badge(h.notificationsOn ? "on" : "off"), h.notificationsOn ? "" : " (GRAPH_NOTIFICATION_URL is not set: cycles only)"),
        ...fact("Last change by notification", lastNote),
        ...fact("Queue depth", depth(h.queue)),
        ...fact("Poison queue", depth(h.poisonQueue)),
      ),
      subs,
    );
  } catch (error) {
    clear(box).append(errorBlock(error));
  }
}

async function loadSeats() {
  const box = $("#seats");
  try {
    const s = await get("seats");
    clear(box).append(
      s.managed ? el("p", { text: "Seats follow the app roles (ROLE_LICENSES)." }) : el("p", { class: "muted", text: "ROLE_LICENSES is not set: gotosync does not manage seats." }),
      table(
        "GoTo licenses and their seats",
        ["License", "In use", "Seats", "Free", "Granted by role"],
        s.licenses.map((l) => [
          `${l.description || l.key} (${l.products.join(", ")})`,
          String(l.used ?? "—"),
          String(l.seats ?? "—"),
          String(l.free ?? "—"),
          l.roles.join(", ") || "—",
        ]),
      ),
    );
  } catch (error) {
    clear(box).append(errorBlock(error));
  }
}
