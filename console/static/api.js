// The console's calls to its own API (/api/console/ops/<operation>). The session is App
// Service Authentication's HttpOnly cookie: this code never sees a key or a token. Every call
// carries the console header; writes send JSON (the server refuses anything else).

const BASE = "/api/console/ops/";
const HEADERS = { "X-Gotosync-Console": "1", Accept: "application/json" };

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the console's API answered HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "";
    this.fix = error?.fix || "";
    this.field = error?.field || "";
  }
}

const listeners = new Set();
/** Called with every ApiError (the app shows a notice for 401/503). */
export function onApiError(listener) {
  listeners.add(listener);
}

async function answer(response) {
  let doc = null;
  if ((response.headers.get("content-type") || "").includes("application/json")) {
    doc = await response.json();
  }
  if (!response.ok && !(doc && !doc.error && response.status === 503)) {
    const error = new ApiError(response.status, doc?.error);
    error.body = doc;
    for (const listener of listeners) listener(error);
    throw error;
  }
  return doc;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function url(operation, params) {
  return BASE + operation + query(params);
}

export async function get(operation, params) {
  const response = await fetch(url(operation, params), { headers: HEADERS, credentials: "same-origin", cache: "no-store" });
  return answer(response);
}

export async function post(operation, body) {
  const response = await fetch(url(operation), {
    method: "POST",
    headers: { ...HEADERS, "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body || {}),
  });
  return answer(response);
}
