// The REST API from a /ui/ page, with the page's own auth: the browser's Basic-auth credentials or Jupyter's
// login cookie, plus Jupyter's XSRF token (its `_xsrf` cookie) on requests that change something.

function xsrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="));
  return found ? decodeURIComponent(found.slice(6)) : "";
}

// `call(method, url, body)` answers {status, json, text}; `api(method, path, body)` is relative to
// `{base}/api/v1/main/` (what view.js's actions expect).
export function client(base) {
  const call = async (method, url, body) => {
    const headers = {};
    const token = xsrf();
    if (token && method !== "GET") headers["X-XSRFToken"] = token;
    const response = await fetch(url, { method, body, headers, credentials: "same-origin" });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (error) { json = null; }
    return { status: response.status, json, text };
  };
  return { call, api: (method, path, body) => call(method, `${base}/api/v1/main/${path}`, body) };
}

// In JupyterLab's Kestra panel, the page follows JupyterLab's theme: the panel says whether it is light
// (messages from the parent window of the same origin only).
// The panel also says when it is collapsed: `unseen()` is then true, as when the tab is hidden.
let collapsed = false;
const watchers = new Set();

function told() {
  for (const watcher of watchers) watcher(!unseen());
}

export function followTheme() {
  window.addEventListener("message", (event) => {
    const data = event.data || {};
    if (event.source !== window.parent || event.origin !== window.location.origin) return;
    if (data.type === "kestra-nb:theme") document.documentElement.dataset.jpThemeLight = data.light ? "true" : "false";
    if (data.type === "kestra-nb:visible" && collapsed !== !data.visible) { collapsed = !data.visible; told(); }
  });
  document.addEventListener("visibilitychange", told);
}

export function unseen() {
  return document.hidden || collapsed;
}

// `watch(seen => …)` is called each time the page becomes seen or unseen (what a live stream opens and closes
// on); it answers the function that stops watching.
export function watchSeen(watcher) {
  watchers.add(watcher);
  return () => watchers.delete(watcher);
}
