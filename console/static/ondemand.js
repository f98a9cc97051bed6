// Provision on demand: a user (UPN, mail or object id) or a group's members. The dry run comes
// first and shows each object's decision, attribute changes and steps; "Apply" asks for
// confirmation, then runs the same request for real.

import { post } from "./api.js";
import { $, announce, badge, busy, changes, clear, confirmAction, counts, el, errorBlock, steps } from "./ui.js";

let pending = null; // the request whose dry run is shown

export function mount() {
  const form = $("#od-form");
  form.addEventListener("change", () => {
    const group = form.elements.kind.value === "group";
    $("#od-name-label").textContent = group ? "Group (object id or display name)" : "User (UPN, mail or object id)";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kind = form.elements.kind.value;
    const name = form.elements.name.value.trim();
    if (!name) return;
    await busy(event.submitter || form.querySelector("button"), () => preview({ [kind]: name }));
  });
}

export function enter() {}
export function leave() {}

async function preview(request) {
  const box = clear($("#od-result"));
  pending = null;
  box.append(el("p", { class: "muted", text: "Planning (nothing is written)…" }));
  try {
    const doc = await post("provision", { ...request, dryRun: true });
    pending = request;
    clear(box).append(...outcome(doc, true));
  } catch (error) {
    clear(box).append(errorBlock(error));
  }
}

async function apply(button) {
  const request = pending;
  const what = request.user ? `the user ${request.user}` : `every member of the group ${request.group}`;
  const ok = await confirmAction(
    "Provision now?",
    [`gotosync provisions ${what} in GoTo now, with the changes shown. This is logged with your name.`],
    "Provision now",
  );
  if (!ok) return;
  await busy(button, async () => {
    const box = $("#od-result");
    try {
      const doc = await post("provision", { ...request, dryRun: false });
      pending = null;
      clear(box).append(...outcome(doc, false));
      announce("Provisioned.");
    } catch (error) {
      box.prepend(errorBlock(error));
    }
  });
}

function outcome(doc, dryRun) {
  const r = doc.requested;
  const head = el(
    "div",
    { class: "card" },
    el("h2", { text: dryRun ? "Dry run: this is what would change (nothing was written)" : "Done: this is what changed" }),
    el("p", { text: `${r.kind === "group" ? "Group" : "User"} ${r.displayName} (${r.id}), found by ${r.resolvedBy}` + (doc.members !== undefined ? `, ${doc.members} member(s)` : "") }),
    el("p", { text: `By action: ${counts(doc.countsByAction)}. By status: ${counts(doc.countsByStatus)}.` }),
    dryRun
      ? el("button", { type: "button", id: "od-apply", class: "danger", text: "Apply: provision now…", onclick: (e) => apply(e.currentTarget) })
      : el("p", {}, el("a", { href: `#/logs?cycle=${encodeURIComponent(doc.cycleId)}`, text: "See these entries in the provisioning logs" })),
  );
  const objects = doc.objects.map((o) =>
    el(
      "section",
      { class: "object card", "aria-label": o.user },
      el("h3", {}, `${o.user} `, badge(o.status), ` ${o.action}`),
      el("p", { text: o.reason }),
      o.errorCode ? el("p", {}, el("strong", { text: "Error code: " }), el("code", { text: o.errorCode })) : null,
      changes(o.modifiedProperties, `Changes for ${o.user}`),
      el("details", {}, el("summary", { text: "Steps" }), steps(o.steps)),
    ),
  );
  return [head, ...objects];
}
