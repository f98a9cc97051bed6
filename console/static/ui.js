// DOM helpers. Text goes in as text (textContent), never as HTML: nothing the API returns (names,
// reasons, attribute values from Entra) can inject markup into the page.

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A <time> in the admin's own time zone, with the UTC instant as its title and datetime. */
export function time(iso) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  const date = new Date(iso);
  return el("time", { datetime: date.toISOString(), title: `${date.toISOString()} (UTC)`, text: dateTime.format(date) });
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function badge(text, kind) {
  return el("span", { class: `badge ${kind || text}`, text });
}

export function counts(doc) {
  const parts = Object.entries(doc || {}).map(([key, n]) => `${key} ${n}`);
  return parts.length ? parts.join(", ") : "—";
}

export function value(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The API error as a paragraph: what happened, and the fix when the server gives one. */
export function errorBlock(error) {
  return el(
    "div",
    { class: "error-block", role: "alert" },
    el("p", { class: "error", text: error.message }),
    error.fix ? el("p", { class: "fix" }, el("strong", { text: "What to do: " }), error.fix) : null,
  );
}

export function announce(text) {
  const region = $("#announce");
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** Asks before anything that writes; resolves true only on an explicit confirmation. */
export function confirmAction(title, lines, confirmLabel) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  clear($("#confirm-text")).append(...lines.map((line) => el("p", { text: line })));
  $("#confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

/** Runs `work` with the button disabled (no double submit) and busy for assistive technology. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function table(caption, headers, rows) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("caption", { class: "visually-hidden", text: caption }),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
    ),
  );
}

/** A step of the pipeline (Import, Scoping, Matching, Processing, Export) with its details. */
export function steps(list) {
  return el(
    "ol",
    { class: "steps" },
    (list || []).map((step) =>
      el(
        "li",
        {},
        badge(step.status),
        " ",
        el("strong", { text: step.type }),
        ` ${step.name}: ${step.description}`,
        Object.keys(step.details || {}).length
          ? el("dl", {}, Object.entries(step.details).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: value(v) })]))
          : null,
      ),
    ),
  );
}

/** Modified properties as old → new. */
export function changes(list, caption) {
  if (!list || !list.length) return el("p", { class: "muted", text: "No attribute changes." });
  return table(
    caption,
    ["Attribute", "Old", "New"],
    list.map((m) => [
      el("code", { text: m.name ?? m.attribute }),
      el("span", { class: "old", text: value(m.old) }),
      el("span", { class: "new", text: `→ ${value(m.new)}` }),
    ]),
  );
}
