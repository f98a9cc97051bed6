// Provisioning logs: filters (date range, identity, action, status, initiator, cycle), the
// entries newest first, a details pane per entry (steps, modified properties, error code,
// reason and fix, who asked for it), and downloads (Entra's three CSV files in a zip, or JSON).
// The filters live in the address (#/logs?user=…) so a search can be bookmarked and shared.

import { get, url } from "./api.js";
import { $, badge, changes, clear, el, errorBlock, steps, time } from "./ui.js";

let selected = null;

export function mount() {
  const form = $("#log-filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = filters();
    const search = new URLSearchParams(params).toString();
    if (location.hash !== `#/logs?${search}`) location.hash = `#/logs?${search}`;
    else search_(params);
  });
  form.addEventListener("reset", () => window.setTimeout(() => form.requestSubmit(), 0));
  $("#details-close").addEventListener("click", closeDetails);
  $("#log-details").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDetails();
  });
}

export function enter() {
  const hash = location.hash;
  const params = Object.fromEntries(new URLSearchParams(hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : ""));
  fill(params);
  search_(filters());
}

export function leave() {}

function localToIso(text) {
  return text ? new Date(text).toISOString() : "";
}

function isoToLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function filters() {
  const f = $("#log-filters").elements;
  const params = {
    user: f.user.value.trim(),
    since: localToIso(f.since.value),
    until: localToIso(f.until.value),
    action: f.action.value,
    status: f.status.value,
    initiator: f.initiator.value,
    cycle: f.cycle.value.trim(),
    limit: f.limit.value,
  };
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v));
}

function fill(params) {
  const f = $("#log-filters").elements;
  for (const name of ["user", "action", "status", "initiator", "cycle", "limit"]) {
    if (params[name] !== undefined) f[name].value = params[name];
  }
  f.since.value = isoToLocal(params.since);
  f.until.value = isoToLocal(params.until);
}

async function search_(params) {
  const summary = $("#logs-summary");
  $("#download-csv").href = url("logs", { ...params, limit: "50000", format: "csv" }); // every matching entry
  $("#download-json").href = url("logs", { ...params, format: "json", download: "1" });
  summary.textContent = "Searching…";
  try {
    const doc = await get("logs", params);
    summary.textContent = doc.count === doc.limit
      ? `The newest ${doc.count} entries (raise "At most" for more).`
      : `${doc.count} ${doc.count === 1 ? "entry" : "entries"}.`;
    render(doc.entries);
  } catch (error) {
    clear(summary).append(errorBlock(error));
    clear($("#log-rows"));
  }
}

function render(entries) {
  const body = clear($("#log-rows"));
  if (!entries.length) {
    body.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No entry matches these filters." })));
    return;
  }
  for (const e of entries) {
    const open = el("button", {
      type: "button",
      class: "link",
      text: e.source.name || e.source.id || "(unnamed)",
      "aria-label": `Details of ${e.action} ${e.status} for ${e.source.name || e.source.id}`,
      onclick: () => openDetails(e, row),
    });
    const row = el(
      "tr",
      { "data-change-id": e.changeId },
      el("td", {}, time(e.time)),
      el("td", {}, open),
      el("td", { text: e.action }),
      el("td", {}, badge(e.status)),
      el("td", { text: e.initiatedBy }),
      el("td", { class: "reason col-reason", text: e.reason }),
    );
    body.append(row);
  }
}

async function openDetails(entry, row) {
  selected?.classList.remove("selected");
  selected = row;
  row.classList.add("selected");
  const pane = $("#log-details");
  pane.hidden = false;
  pane.parentElement.classList.add("open");
  $("#details-title").textContent = `${entry.action} · ${entry.source.name || entry.source.id}`;
  const body = clear($("#details-body"));
  body.append(el("p", { class: "muted", text: "Loading…" }));
  $("#details-title").focus();
  try {
    const doc = await get("log-entry", { changeId: entry.changeId, time: entry.time });
    clear(body).append(...details(doc));
  } catch (error) {
    clear(body).append(errorBlock(error));
  }
}

function fact(term, ...value) {
  return [el("dt", { text: term }), el("dd", {}, ...value)];
}

function details(d) {
  // As the portal's details pane: what happened and what to do first, then the changes and the
  // steps, then the identifiers.
  const blocks = [
    el("p", {}, badge(d.status), ` ${d.action} · `, time(d.time)),
    el("h3", { text: "Reason" }),
    el("p", { text: d.reason || "—" }),
  ];
  if (d.errorCode) {
    blocks.push(el("p", {}, el("strong", { text: "Error code: " }), el("code", { text: d.errorCode })));
  }
  if (d.errorFix) {
    blocks.push(el("p", { class: "fix" }, el("strong", { text: "What to do: " }), d.errorFix));
  }
  blocks.push(el("h3", { text: "Modified properties" }), changes(d.modifiedProperties, "Attributes changed, old and new value"));
  blocks.push(el("h3", { text: "Steps" }), steps(d.steps));
  blocks.push(
    el("h3", { text: "Summary" }),
    el(
      "dl",
      { class: "facts" },
      ...fact("Source (Entra)", `${d.source.name} `, el("code", { text: d.source.id })),
      ...fact("Target (GoTo)", d.target.id ? `${d.target.name} ` : "—", d.target.id ? el("code", { text: d.target.id }) : null),
      ...fact("Initiated by", d.initiatedBy + (d.requestedBy ? ` — ${d.requestedBy.name} (${d.requestedBy.via})` : "")),
      ...fact("Cycle", el("a", { href: `#/logs?cycle=${encodeURIComponent(d.cycleId)}`, text: d.cycleId })),
      ...fact("Change id", el("code", { text: d.changeId })),
      ...fact("Duration", `${d.durationMs} ms`),
    ),
  );
  return blocks;
}

function closeDetails() {
  $("#log-details").hidden = true;
  $("#log-details").parentElement.classList.remove("open");
  selected?.classList.remove("selected");
  selected?.querySelector("button")?.focus();
  selected = null;
}
