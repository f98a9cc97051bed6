// Actions: test connection (each failure with its fix), start and stop, restart with reset
// scopes, the mapping preview for one user, and the recent admin actions. Whatever writes asks
// for confirmation first.

import { get, post } from "./api.js";
import { $, announce, badge, busy, clear, confirmAction, el, errorBlock, table, time, value } from "./ui.js";

let enabled = null;

export function mount() {
  $("#tc-run").addEventListener("click", (event) => busy(event.currentTarget, testConnection));
  $("#onoff-toggle").addEventListener("click", (event) => toggle(event.currentTarget));
  $("#restart-form").addEventListener("submit", restartJob);
  $("#preview-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || $("#preview-form button"), previewMapping);
  });
}

export function enter() {
  loadState();
  loadAudit();
}

export function leave() {}

async function loadState() {
  try {
    const doc = await get("status");
    enabled = doc.provisioning === "on";
    $("#onoff-state").textContent = enabled ? "on" : "off";
    $("#onoff-toggle").textContent = enabled ? "Stop provisioning…" : "Start provisioning…";
    $("#onoff-toggle").className = enabled ? "danger" : "";
  } catch (error) {
    clear($("#onoff-result")).append(errorBlock(error));
  }
}

async function testConnection() {
  const box = clear($("#tc-result"));
  box.append(el("p", { class: "muted", text: "Testing…" }));
  try {
    const doc = await get("test-connection");
    clear(box).append(
      el(
        "ul",
        { class: "checks" },
        doc.checks.map((c) =>
          el(
            "li",
            {},
            badge(c.ok ? "OK" : "Failed", c.ok ? "ok" : "fail"),
            " ",
            el("strong", { text: c.name }),
            `: ${c.detail}`,
            c.fix ? el("p", { class: "fix" }, el("strong", { text: "What to do: " }), c.fix) : null,
          ),
        ),
      ),
    );
    announce(doc.ok ? "Every connection works." : "A connection failed.");
  } catch (error) {
    clear(box).append(errorBlock(error));
  }
}

async function toggle(button) {
  const turnOn = !enabled;
  const ok = await confirmAction(
    turnOn ? "Start provisioning?" : "Stop provisioning?",
    turnOn
      ? ["Scheduled cycles and real-time changes are carried out again from now on."]
      : ["Scheduled cycles and real-time changes are skipped until someone starts provisioning again. A running cycle finishes its work."],
    turnOn ? "Start" : "Stop",
  );
  if (!ok) return;
  await busy(button, async () => {
    try {
      const doc = await post("provisioning", { enabled: turnOn });
      const notes = doc.notes.map((n) => `${n.charAt(0).toUpperCase()}${n.slice(1)}.`);
      $("#onoff-result").textContent = [`Provisioning is ${doc.provisioning}.`, ...notes].join(" ");
    } catch (error) {
      clear($("#onoff-result")).append(errorBlock(error));
    }
  });
  loadState();
  loadAudit();
}

async function restartJob(event) {
  event.preventDefault();
  const scopes = [...$("#restart-form").querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
  if (!scopes.length) {
    $("#restart-result").textContent = "Pick at least one thing to reset.";
    return;
  }
  const ok = await confirmAction(
    "Restart provisioning?",
    [`Reset: ${scopes.join(", ")}.`, "Links between Entra and GoTo users are kept. A running cycle makes the restart wait."],
    "Restart",
  );
  if (!ok) return;
  await busy(event.submitter || $("#restart-form button"), async () => {
    const box = $("#restart-result");
    try {
      const doc = await post("restart", { scopes });
      clear(box).append(
        el("p", { text: `Restarted (${doc.scopes.join(", ")}). The next cycle is ${doc.nextCycle.toLowerCase()}.` }),
        ...doc.notes.map((n) => el("p", { class: "muted", text: n })),
      );
    } catch (error) {
      clear(box).append(errorBlock(error));
    }
  });
  loadAudit();
}

async function previewMapping() {
  const user = $("#preview-user").value.trim();
  const box = clear($("#preview-result"));
  if (!user) return;
  box.append(el("p", { class: "muted", text: "Reading the user (nothing is written)…" }));
  try {
    const p = await get("mapping-preview", { user });
    clear(box).append(
      el("p", {}, `${p.user.displayName} (${p.user.userPrincipalName || p.user.id}): `, badge(p.action, "kind"), ` ${p.reason}`),
      el("p", { class: "muted", text: `Roles: ${p.user.roles.join(", ") || "none"}. ${p.inScope ? "In scope." : "Not in scope."}` }),
      table(
        `What the mapping makes of ${p.user.displayName}`,
        ["GoTo attribute", "Source", "Source values", "Result", ""],
        p.attributes.map((a) => [
          el("code", { title: a.target, text: a.target.startsWith("urn:") ? a.target.slice(a.target.lastIndexOf(":") + 1) : a.target }),
          el("code", { text: a.source }),
          Object.entries(a.sourceValues).map(([k, v]) => `${k} = ${value(v)}`).join("; ") || "—",
          value(a.result),
          a.error ? el("span", { class: "error", text: a.error }) : a.status,
        ]),
      ),
    );
  } catch (error) {
    clear(box).append(errorBlock(error));
  }
}

async function loadAudit() {
  const body = clear($("#audit-rows"));
  try {
    const doc = await get("audit", { limit: 20 });
    if (!doc.entries.length) {
      body.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No admin action yet." })));
      return;
    }
    body.append(
      ...doc.entries.map((e) =>
        el("tr", {}, el("td", {}, time(e.time)), el("td", { text: e.actor }), el("td", { text: e.via }), el("td", { text: e.action }), el("td", { text: e.target || "—" }), el("td", { text: e.outcome })),
      ),
    );
  } catch (error) {
    body.append(el("tr", {}, el("td", { colspan: "6" }, errorBlock(error))));
  }
}
