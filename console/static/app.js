// The console's shell: who is signed in, the notice for a lost session, and the hash router
// that shows one view at a time (#/overview, #/logs, #/on-demand, #/actions).

import { get, onApiError } from "./api.js";
import { $ } from "./ui.js";
import * as overview from "./overview.js";
import * as logs from "./logs.js";
import * as onDemand from "./ondemand.js";
import * as actions from "./actions.js";

const VIEWS = { overview, logs, "on-demand": onDemand, actions };
let current = null;

function showNotice(text, link) {
  const notice = $("#notice");
  notice.replaceChildren(text);
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    notice.append(" ", a);
  }
  notice.hidden = false;
}

onApiError((error) => {
  if (error.status === 401) {
    showNotice("Your session has ended.", { href: "/.auth/login/aad?post_login_redirect_uri=/api/console", text: "Sign in again" });
  } else if (error.status === 403 && error.code === "Forbidden") {
    showNotice(`${error.message}. ${error.fix}`);
  } else if (error.status === 503 && error.code === "ConsoleClosed") {
    showNotice(`${error.message}. ${error.fix}`);
  }
});

function route() {
  const path = location.hash.replace(/^#\/?/, "");
  const name = path.split(/[/?]/)[0] || "overview";
  const rest = path.slice(name.length).split("?")[0].split("/").filter(Boolean);
  const view = VIEWS[name] ? name : "overview";
  for (const section of document.querySelectorAll("[data-view]")) section.hidden = section.dataset.view !== view;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current && current !== VIEWS[view]) current.leave?.();
  const first = current !== VIEWS[view];
  current = VIEWS[view];
  current.enter(rest.map(decodeURIComponent));
  if (first) {
    document.title = `${document.querySelector(`[data-view="${view}"] h1`).textContent} · gotosync console`;
  }
}

async function whoAmI() {
  try {
    const me = await get("me");
    $("#who").textContent = me.name;
  } catch {
    $("#who").textContent = "not signed in";
  }
}

for (const view of Object.values(VIEWS)) view.mount();
window.addEventListener("hashchange", route);
whoAmI();
route();
