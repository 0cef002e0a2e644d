// Kestra's pages under /ui/ (the standalone server, and the Jupyter server's {base_url}kestra/ui/, which the
// JupyterLab "Kestra" panel shows): the executions (filters by state, namespace, flow, label and time; they update
// while the tab is visible), the flows (search), and a flow's page (its Run form built from its inputs, with the
// API's validation messages next to the fields, its topology, triggers, YAML, revisions and executions).
// Everything goes through the REST API with the page's auth (api.js); every value is escaped.
import { client, followTheme, unseen, watchSeen } from "./api.js";
import { flowSource } from "./flowedit.js";
import { logsPage } from "./logs.js";
import { esc, topology } from "./topology.js";
import { answerText } from "./view.js";

const page = document.getElementById("kn-page");
const base = page.dataset.base || "";
const colors = (JSON.parse(document.getElementById("kn-state").textContent) || {}).colors || {};
const { call, api } = client(base);
followTheme();
const STATES = ["CREATED", "RUNNING", "PAUSED", "SUCCESS", "WARNING", "FAILED", "KILLED", "QUEUED", "CANCELLED"];

const enc = encodeURIComponent;
const ui = (path) => `${base}/ui/main/${path}`;
const flowUrl = (namespace, id) => ui(`flows/${enc(namespace)}/${enc(id)}`);
const executionUrl = (e) => ui(`executions/${enc(e.namespace)}/${enc(e.flowId)}/${enc(e.id)}`);

function badge(state) {
  return `<span class="kn-badge" data-state="${esc(state)}" style="background:${esc(colors[state] || "#918BA9")}">${esc(state)}</span>`;
}

function duration(text) {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(text || "");
  if (!m) return "";
  const seconds = (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0);
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : seconds < 60 ? `${seconds.toFixed(2)} s`
    : `${Math.floor(seconds / 60)}m ${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
}

function nav(active) {
  const link = (name, path, label) => `<a href="${ui(path)}"${active === name ? ' class="kn-active"' : ""}>${label}</a>`;
  return `<nav class="kn-nav"><b>Kestra</b>${link("executions", "executions", "Executions")}${link("flows", "flows", "Flows")}` +
    `${link("namespaces", "namespaces", "Namespaces")}</nav>`;
}

function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return isNaN(date) ? esc(text) : esc(date.toLocaleString());
}

// ---------------------------------------------------------------------------------------------- executions

const ROW = 26;      // px of one execution row (the list draws only the rows in sight)
const PAGE = 100;    // executions fetched at a time

function executionRow(e, index) {
  const labels = (e.labels || []).filter((l) => !String(l.key).startsWith("system."))
    .map((l) => `<span class="kn-label-chip">${esc(l.key)}:${esc(l.value)}</span>`).join(" ");
  return `<div class="kn-erow" role="row" style="top:${index * ROW}px" data-id="${esc(e.id)}" data-state="${esc(e.state.current)}">` +
    `<span>${badge(e.state.current)}</span><span><a href="${executionUrl(e)}">${esc(e.id)}</a></span>` +
    `<span><a href="${flowUrl(e.namespace, e.flowId)}">${esc(e.namespace)}.${esc(e.flowId)}</a></span>` +
    `<span>${when(e.state.startDate || (e.state.histories || [{}])[0].date)}</span>` +
    `<span>${esc(duration(e.state.duration))}</span><span>${labels}</span></div>`;
}

// The executions, newest first: a list of any length (10,000 and more) that fetches the pages in sight and
// draws only their rows. While it is seen, it listens to the server's `changes` stream (/ui/main/executions/changes,
// server-sent events) and fetches the pages in sight again only when an execution changed; hidden or left, the
// stream is closed, so a list nobody looks at asks the server for nothing.
async function executions(root, fixed) {
  const filters = fixed ? "" : '<form class="kn-filterbar">' +
    `<label>State <select name="state"><option value="">any</option>${STATES.map((s) => `<option>${s}</option>`).join("")}</select></label>` +
    '<label>Namespace <input name="namespace" placeholder="company.team"></label>' +
    '<label>Flow <input name="flowId" placeholder="myflow"></label>' +
    '<label>Label <input name="labels" placeholder="team:data"></label>' +
    '<label>Since <select name="timeRange"><option value="">any time</option><option value="PT1H">an hour</option>' +
    '<option value="P1D">a day</option><option value="P7D">a week</option></select></label></form>';
  root.insertAdjacentHTML("beforeend", `<section class="kn-executions">${filters}<div class="kn-count kn-muted"></div>` +
    '<div class="kn-ehead" role="row"><span>State</span><span>Execution</span><span>Flow</span><span>Started</span>' +
    '<span>Duration</span><span>Labels</span></div><div class="kn-escroll" role="table"><div class="kn-ebody"></div></div></section>');
  const section = root.lastElementChild;
  const form = section.querySelector("form");
  const scroller = section.querySelector(".kn-escroll");
  const body = section.querySelector(".kn-ebody");
  let pages = new Map();   // page number -> executions
  let total = null;
  let query = "";
  let drawn = "";
  const params = (page) => {
    const p = new URLSearchParams({ page: String(page), size: String(PAGE), sort: "state.startDate:desc" });
    for (const [key, value] of Object.entries(fixed || {})) p.set(key, value);
    if (form) for (const [key, value] of new FormData(form)) if (value) p.set(key, String(value).trim());
    return p;
  };
  const inSight = () => {
    const first = Math.floor(scroller.scrollTop / ROW);
    const last = first + Math.ceil((scroller.clientHeight || 600) / ROW) + 5;
    return [first, last];
  };
  const draw = () => {
    const [first, last] = inSight();
    const rows = [];
    for (let i = Math.max(0, first - 5); i < Math.min(total || 0, last); i++) {
      const found = (pages.get(Math.floor(i / PAGE) + 1) || [])[i % PAGE];
      if (found) rows.push(executionRow(found, i));
    }
    const html = total === 0 ? '<div class="kn-muted kn-empty-list">No executions</div>' : rows.join("");
    body.style.height = `${Math.max(1, total || 0) * ROW}px`;
    if (html !== drawn) {   // redrawn only when something changed
      drawn = html;
      body.innerHTML = html;
    }
  };
  const fetchPage = async (page) => {
    const answer = await api("GET", `executions/search?${params(page)}`);
    if (answer.status !== 200) {
      section.querySelector(".kn-count").textContent = answerText(answer);
      return false;
    }
    pages.set(page, answer.json.results);
    total = answer.json.total;
    section.querySelector(".kn-count").textContent = `${total} execution${total === 1 ? "" : "s"}`;
    return true;
  };
  let busy = null;     // the refresh under way; one more is queued behind it at most
  let again = null;    // null, or whether the queued one fetches every page in sight again
  const refresh = async (fresh) => {
    if (busy) { again = !!(again || fresh); return busy; }
    busy = load(fresh).finally(() => { busy = null; });
    await busy;
    if (again !== null) { const next = again; again = null; await refresh(next); }
  };
  const load = async (fresh) => {
    const now = String(params(1));
    if (now !== query || fresh) {   // other filters: start over
      if (now !== query) { pages = new Map(); scroller.scrollTop = 0; }
      query = now;
    }
    const [first, last] = inSight();
    const wanted = new Set([1, Math.floor(first / PAGE) + 1, Math.floor(Math.max(first, last - 1) / PAGE) + 1]);
    for (const page of wanted) if (fresh || !pages.has(page)) await fetchPage(page);
    draw();
  };
  if (form) form.addEventListener("input", () => { refresh(true); });
  scroller.addEventListener("scroll", () => { refresh(false); });
  await refresh(true);
  let stream = null;
  let opened = 0;
  const stop = () => { if (stream) { stream.close(); stream = null; } };
  const follow = () => {
    if (stream || unseen() || !document.body.contains(section)) return;
    stream = new EventSource(ui("executions/changes"), { withCredentials: true });
    // a (re)connection after the first may follow missed changes: the rows are fetched again then
    stream.addEventListener("open", () => { if (opened++) refresh(true).catch(() => {}); });
    stream.addEventListener("message", (event) => {
      if (event.lastEventId === "changed") refresh(true).catch(() => {});
    });
  };
  watchSeen((seen) => { if (seen) follow(); else stop(); });
  window.addEventListener("pagehide", stop);
  follow();
}

// --------------------------------------------------------------------------------------------------- flows

async function flows(root) {
  root.insertAdjacentHTML("beforeend", '<section><form class="kn-filterbar"><label>Search <input name="q" ' +
    'placeholder="id or namespace"></label></form><table class="kn-table"><thead><tr><th>Flow</th><th>Revision</th>' +
    "<th>Description</th></tr></thead><tbody></tbody></table></section>");
  const section = root.lastElementChild;
  const refresh = async () => {
    const q = new FormData(section.querySelector("form")).get("q") || "";
    const answer = await api("GET", `flows/search?size=200&sort=id:asc${q ? `&q=${enc(q)}` : ""}`);
    const results = answer.status === 200 ? answer.json.results : [];
    section.querySelector("tbody").innerHTML = results.length ? results.map((f) =>
      `<tr data-flow="${esc(f.namespace)}.${esc(f.id)}"><td><a href="${flowUrl(f.namespace, f.id)}">${esc(f.namespace)}.${esc(f.id)}</a></td>` +
      `<td>${esc(f.revision)}</td><td class="kn-muted">${esc(f.description || "")}</td></tr>`).join("")
      : `<tr><td colspan="3" class="kn-muted">${answer.status === 200 ? "No flows" : esc(answerText(answer))}</td></tr>`;
  };
  section.querySelector("form").addEventListener("input", () => { refresh(); });
  await refresh();
}

// ---------------------------------------------------------------------------------------------- namespaces

const namespaceUrl = (namespace) => ui(`namespaces/${enc(namespace)}`);

// The namespaces that hold flows, and their parents (`company` for `company.team`), searched.
async function namespaces(root) {
  root.insertAdjacentHTML("beforeend", '<section class="kn-namespaces"><form class="kn-filterbar"><label>Search ' +
    '<input name="q" placeholder="company.team"></label></form><ul class="kn-list"></ul></section>');
  const section = root.lastElementChild;
  const refresh = async () => {
    const q = new FormData(section.querySelector("form")).get("q") || "";
    const answer = await api("GET", `flows/distinct-namespaces${q ? `?q=${enc(q)}` : ""}`);
    const list = section.querySelector(".kn-list");
    if (answer.status !== 200) { list.innerHTML = `<li class="kn-error" role="alert">${esc(answerText(answer))}</li>`; return; }
    const names = new Set();
    for (const name of answer.json) {
      const parts = name.split(".");
      for (let i = 1; i <= parts.length; i++) {
        const parent = parts.slice(0, i).join(".");
        if (!q || parent.toLowerCase().includes(q.toLowerCase())) names.add(parent);
      }
    }
    const sorted = [...names].sort();
    list.innerHTML = sorted.length ? sorted.map((name) => `<li data-namespace="${esc(name)}" style="padding-left:` +
      `${(name.split(".").length - 1) * 14}px"><a href="${namespaceUrl(name)}">${esc(name)}</a></li>`).join("")
      : '<li class="kn-muted">No namespaces</li>';
  };
  section.querySelector("form").addEventListener("input", () => { refresh(); });
  section.querySelector("form").addEventListener("submit", (event) => event.preventDefault());
  await refresh();
}

// A namespace: its flows, its KV entries (read-only) and the executions in it and its children.
async function namespacePage(root, namespace) {
  const [flowList, kv] = await Promise.all([api("GET", `flows/${enc(namespace)}`),
    api("GET", `namespaces/${enc(namespace)}/kv`)]);
  const flowRows = flowList.status !== 200 ? `<tr><td colspan="3" class="kn-error">${esc(answerText(flowList))}</td></tr>`
    : flowList.json.length ? flowList.json.map((f) => `<tr data-flow="${esc(f.id)}"><td><a href="${flowUrl(f.namespace, f.id)}">` +
      `${esc(f.id)}</a></td><td>${esc(f.revision)}</td><td class="kn-muted">${esc(f.description || "")}</td></tr>`).join("")
      : '<tr><td colspan="3" class="kn-muted">No flows in this namespace</td></tr>';
  const kvRows = kv.status !== 200 ? `<tr><td colspan="4" class="kn-error">${esc(answerText(kv))}</td></tr>`
    : kv.json.length ? kv.json.map((e) => `<tr data-key="${esc(e.key)}"><td><code>${esc(e.key)}</code></td><td>${esc(e.version)}</td>` +
      `<td>${when(e.updateDate)}</td><td>${e.expirationDate ? when(e.expirationDate) : '<span class="kn-muted">never</span>'}</td></tr>`).join("")
      : '<tr><td colspan="4" class="kn-muted">No KV entries</td></tr>';
  root.insertAdjacentHTML("beforeend", `<section class="kn-namespace-page"><h2>${esc(namespace)}</h2>` +
    '<h3>Flows</h3><table class="kn-table kn-ns-flows"><thead><tr><th>Flow</th><th>Revision</th><th>Description</th></tr>' +
    `</thead><tbody>${flowRows}</tbody></table>` +
    '<h3>KV store</h3><table class="kn-table kn-ns-kv"><thead><tr><th>Key</th><th>Version</th><th>Updated</th>' +
    `<th>Expires</th></tr></thead><tbody>${kvRows}</tbody></table>` +
    "<h3>Executions</h3></section>");
  await executions(root.lastElementChild, { namespace });
}

// ---------------------------------------------------------------------------------------------- a flow

function field(input) {
  const name = esc(input.id);
  const type = String(input.type || "STRING").toUpperCase();
  const required = input.required !== false && input.defaults === undefined;
  const initial = input.defaults === undefined || input.defaults === null ? ""
    : typeof input.defaults === "string" ? input.defaults : JSON.stringify(input.defaults);
  const value = initial && !initial.includes("{{") ? ` value="${esc(initial)}"` : "";
  const values = Array.isArray(input.values) ? input.values : [];
  let control;
  if (type === "FILE") control = `<input type="file" name="${name}"${required ? " required" : ""}>`;
  else if (type === "BOOLEAN" || type === "BOOL") {
    control = `<select name="${name}"><option${initial === "true" ? " selected" : ""}>true</option>` +
      `<option${initial !== "true" ? " selected" : ""}>false</option></select>`;
  } else if ((type === "SELECT" || type === "ENUM" || type === "MULTISELECT") && values.length) {
    control = `<select name="${name}"${type === "MULTISELECT" ? " multiple" : ""}>` + (type === "MULTISELECT" ? "" : '<option value=""></option>') +
      values.map((v) => `<option${String(v) === initial ? " selected" : ""}>${esc(v)}</option>`).join("") + "</select>";
  } else if (["JSON", "YAML", "ARRAY"].includes(type)) control = `<textarea name="${name}" rows="3">${esc(initial)}</textarea>`;
  else control = `<input type="${type === "SECRET" ? "password" : "text"}" name="${name}"${value}>`;
  return `<label class="kn-field" data-input="${name}"><span>${name}${required ? " *" : ""} <span class="kn-muted">${esc(type)}</span></span>` +
    `${control}${input.description ? `<small class="kn-muted">${esc(input.description)}</small>` : ""}<span class="kn-field-error" role="alert"></span></label>`;
}

async function flowPage(root, namespace, id) {
  const [flow, extra, revisions] = await Promise.all([
    api("GET", `flows/${enc(namespace)}/${enc(id)}?source=true`),
    call("GET", ui(`flows/${enc(namespace)}/${enc(id)}/graph`)),
    api("GET", `flows/${enc(namespace)}/${enc(id)}/revisions`)]);
  if (flow.status !== 200) {
    root.insertAdjacentHTML("beforeend", `<p class="kn-error" role="alert">${esc(answerText(flow))}</p>`);
    return;
  }
  const f = flow.json;
  const embedded = window.parent !== window;   // in JupyterLab's Kestra panel
  const inputs = f.inputs || [];
  const triggers = (extra.json && extra.json.triggers) || [];
  root.insertAdjacentHTML("beforeend", `<section class="kn-flow-page"><h2><a href="${namespaceUrl(namespace)}">${esc(namespace)}</a>.${esc(id)} ` +
    `<span class="kn-muted">rev ${esc(f.revision)}</span></h2>` +
    (f.description ? `<p>${esc(f.description)}</p>` : "") +
    (embedded ? '<p><button class="kn-act" data-action="notebook">Open in a notebook</button></p>' : "") +
    `<h3>Run</h3><form class="kn-run">${inputs.map(field).join("")}<button type="submit" class="kn-act">Run</button>` +
    ' <span class="kn-run-msg" role="status"></span></form>' +
    `<h3>Topology</h3><div class="kn-topo-pane">${extra.json ? topology(extra.json.graph, {}, colors) : ""}</div>` +
    `<h3>Triggers</h3>${triggers.length ? `<ul>${triggers.map((t) => `<li><code>${esc(t.id)}</code> ${esc(t.type)}` +
      (t.disabled ? " (disabled)" : "") + (t.next ? ` · next <time>${when(t.next)}</time>` : "") + "</li>").join("")}</ul>` : '<p class="kn-muted">None</p>'}` +
    '<h3>Source</h3><div class="kn-source-box"></div>' +
    `<h3>Revisions</h3><p class="kn-revisions">${(revisions.json || []).map((r) => `<span class="kn-label-chip">${esc(r.revision)}` +
      `${r.updated ? ` · ${when(r.updated)}` : ""}</span>`).join(" ")}</p><div class="kn-revisions-diff"></div>` +
    "<h3>Executions</h3></section>");
  const section = root.lastElementChild;
  flowSource(section.querySelector(".kn-source-box"), {
    namespace, id, source: f.source || "", revisions: revisions.status === 200 ? revisions.json : [], api,
    saved: () => { window.location.reload(); },
    deleted: () => { window.location.assign(ui("flows")); },
  }).revisionsDiff(section.querySelector(".kn-revisions-diff"));
  const form = section.querySelector(".kn-run");
  const say = (text, failed) => {
    const msg = section.querySelector(".kn-run-msg");
    msg.textContent = text;
    msg.classList.toggle("kn-failed", !!failed);
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = () => {
      const data = new FormData(form);
      for (const [key, value] of [...data.entries()]) {
        if ((value instanceof File && !value.name) || value === "") data.delete(key);
      }
      return data;
    };
    for (const el of form.querySelectorAll(".kn-field-error")) el.textContent = "";
    say("checking…");
    const checked = await api("POST", `executions/${enc(namespace)}/${enc(id)}/validate`, body());
    if (checked.status !== 200) { say(answerText(checked), true); return; }
    let problems = 0;
    for (const item of checked.json.inputs || []) {
      const errors = (item.errors || []).map((e) => e.message);
      if (!errors.length) continue;
      problems += errors.length;
      const slot = form.querySelector(`[data-input="${CSS.escape(item.input.id)}"] .kn-field-error`);
      if (slot) slot.textContent = errors.join("; ");
    }
    if (problems) { say(`${problems} input${problems > 1 ? "s" : ""} to fix`, true); return; }
    say("starting…");
    const started = await api("POST", `executions/${enc(namespace)}/${enc(id)}`, body());
    if (started.status !== 200) { say(answerText(started), true); return; }
    window.location.assign(started.json.url || executionUrl(started.json));
  });
  const open = section.querySelector('[data-action="notebook"]');
  if (open) open.addEventListener("click", () => {
    window.parent.postMessage({ type: "kestra-nb:open-notebook", namespace, id, source: f.source || "" }, window.location.origin);
  });
  await executions(section, { namespace, flowId: id });
}

// ------------------------------------------------------------------------------------------------ router

async function main() {
  const path = window.location.pathname.slice(base.length).replace(/\/+$/, "");
  const flow = /^\/ui\/[^/]+\/flows\/([^/]+)\/([^/]+)$/.exec(path);
  const logs = /^\/ui\/[^/]+\/executions\/([^/]+)\/([^/]+)\/([^/]+)\/logs$/.exec(path);
  const namespace = /^\/ui\/[^/]+\/namespaces\/([^/]+)$/.exec(path);
  const root = document.createElement("div");
  root.className = "kn-app";
  page.appendChild(root);
  if (logs) {
    const [ns, flowId, id] = logs.slice(1).map(decodeURIComponent);
    root.innerHTML = nav("executions") + `<h2 class="kn-title">Logs of <a href="${executionUrl({ namespace: ns, flowId, id })}">` +
      `${esc(ns)}.${esc(flowId)} · ${esc(id)}</a></h2>`;
    document.title = `Logs · ${id} · kestra_nb`;
    await logsPage(root, id, { base, api });
  } else if (namespace) {
    root.innerHTML = nav("namespaces");
    document.title = `${decodeURIComponent(namespace[1])} · kestra_nb`;
    await namespacePage(root, decodeURIComponent(namespace[1]));
  } else if (/\/namespaces$/.test(path)) {
    root.innerHTML = nav("namespaces");
    await namespaces(root);
  } else if (flow) {
    root.innerHTML = nav("flows");
    document.title = `${decodeURIComponent(flow[1])}.${decodeURIComponent(flow[2])} · kestra_nb`;
    await flowPage(root, decodeURIComponent(flow[1]), decodeURIComponent(flow[2]));
  } else if (/\/flows$/.test(path)) {
    root.innerHTML = nav("flows");
    await flows(root);
  } else {
    root.innerHTML = nav("executions");
    await executions(root, null);
  }
}

main();
