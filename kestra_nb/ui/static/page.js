// An execution's page under /ui/ (where an execution JSON's `url` points): the same view as a notebook's
// output (view.js), drawn from the state the server embedded, then followed while the execution runs by
// polling its view (…/ui/main/executions/{id}/view, a second apart, stopped once it has ended or the tab is
// hidden). Actions call the REST API with the page's own auth: the browser's Basic-auth credentials or
// Jupyter's login cookie, plus Jupyter's XSRF token (its `_xsrf` cookie) on requests that change something.
import { mount } from "./view.js";

const page = document.getElementById("kn-page");
const base = page.dataset.base || "";
const executionId = page.dataset.execution;
const ENDED = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"]);

function xsrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="));
  return found ? decodeURIComponent(found.slice(6)) : "";
}

async function call(method, url, body) {
  const headers = {};
  const token = xsrf();
  if (token && method !== "GET") headers["X-XSRFToken"] = token;
  const response = await fetch(url, { method, body, headers, credentials: "same-origin" });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (error) { json = null; }
  return { status: response.status, json, text };
}

const api = (method, path, body) => call(method, `${base}/api/v1/main/${path}`, body);
const view = mount(page, { api });
let data = JSON.parse(document.getElementById("kn-state").textContent);
view.update(data);

async function follow() {
  while (!ENDED.has((data.summary || {}).state) || (data.summary || {}).end === null) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (document.hidden) continue;
    const answer = await call("GET", `${base}/ui/main/executions/${encodeURIComponent(executionId)}/view`);
    if (answer.status !== 200 || !answer.json) return;
    data = answer.json;
    view.update(data);
  }
}

follow();
