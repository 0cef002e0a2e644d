// The live execution view (anywidget ESM, no build step): header, Gantt timeline, then tabs for Outputs,
// Logs (task and level filters) and the execution JSON. It draws the same markup and classes as the
// static HTML of kestra_nb/jupyter/widgets/static.py, from the traits the kernel syncs.

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
const LEVEL_COLORS = {TRACE: "#918BA9", DEBUG: "#918BA9", INFO: "#1761FD", WARN: "#DD5F00", ERROR: "#AB0009"};

function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}[c]));
}

function fmt(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  const s = Math.floor(ms / 1000);
  return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
}

function pct(value, total) {
  return Math.max(0, Math.min(100, (value / total) * 100)).toFixed(3);
}

function header(summary, now, colors) {
  const state = summary.state || "CREATED";
  const total = summary.end !== null && summary.end !== undefined ? summary.end : now;
  const labels = (summary.labels || []).map((l) => `<span class="kn-label-chip">${esc(l)}</span>`).join("");
  const revision = summary.revision ? ` <span class="kn-muted">rev ${esc(summary.revision)}</span>` : "";
  return `<div class="kn-head"><span class="kn-badge" data-state="${esc(state)}" style="background:${colors[state] || "#918BA9"}">${esc(state)}</span>` +
    `<span class="kn-flow">${esc(summary.namespace || "")}.${esc(summary.flowId || "")}</span>${revision}` +
    `<span class="kn-muted kn-exid">${esc(summary.id || "")}</span>${labels}` +
    `<span class="kn-total" title="total duration">${fmt(total)}</span></div>` +
    (summary.hint ? `<div class="kn-hint">${esc(summary.hint)}</div>` : "");
}

// Rows of child executions (subflows) carry `under`: the subflow rows they are nested in; a folded one hides them.
function timeline(summary, rows, now, colors, folded) {
  if (!rows.length) return '<div class="kn-tl"><div class="kn-empty">No task run yet</div></div>';
  let total = summary.end !== null && summary.end !== undefined ? summary.end : now;
  for (const r of rows) total = Math.max(total, r.end || 0);
  total = Math.max(total, 0.001);
  const out = ['<div class="kn-tl">'];
  for (const r of rows) {
    if (folded && (r.under || []).some((id) => folded.has(id))) continue;
    const fill = colors[r.state] || "#918BA9";
    const end = r.end !== null && r.end !== undefined ? r.end : now;
    const running = r.running;
    const queuedTo = running !== null && running !== undefined ? running : end;
    const value = r.value !== null && r.value !== undefined ? ` <span class="kn-value">${esc(r.value)}</span>` : "";
    const attempts = r.attempts > 1 ? `<span class="kn-attempts" title="${r.attempts} attempts">&#x21bb;${r.attempts}</span>` : "";
    const bar = running !== null && running !== undefined
      ? `<div class="kn-bar" data-state="${r.state}" data-task="${esc(r.task)}" style="left:${pct(running, total)}%;width:${pct(end - running, total)}%;background:${fill}"></div>`
      : "";
    const fold = r.subflow ? `<span class="kn-fold" style="cursor:pointer">${folded && folded.has(r.id) ? "&#x25B8;" : "&#x25BE;"}</span>` : "";
    const nested = r.execution ? ` data-execution="${esc(r.execution)}" data-under="${esc((r.under || []).join(" "))}"` : "";
    out.push(`<div class="kn-row" data-id="${esc(r.id)}" data-task="${esc(r.task)}" data-state="${r.state}"${nested} title="${esc(r.task)} ${r.state}">` +
      `<div class="kn-label" style="padding-left:${r.depth * 14}px">${fold}${esc(r.task)}${value}${attempts}</div>` +
      `<div class="kn-track"><div class="kn-queued" data-state="${r.state}" style="left:${pct(r.created, total)}%;width:${pct(queuedTo - r.created, total)}%;background:${fill}"></div>${bar}</div>` +
      `<div class="kn-dur">${fmt(end - r.created)}</div></div>`);
  }
  out.push("</div>");
  return out.join("");
}

// The Jupyter server's base URL from the page config JupyterLab and Notebook embed (`/` elsewhere).
function baseUrl() {
  try {
    const config = document.getElementById("jupyter-config-data");
    const base = config ? JSON.parse(config.textContent || "{}").baseUrl : "";
    if (base) return base.endsWith("/") ? base : base + "/";
  } catch (error) { /* no usable page config: the server root */ }
  return "/";
}

// A `kestra:///` file of the execution, downloaded through the server extension with the session cookie.
function fileUrl(executionId, uri) {
  return `${baseUrl()}kestra/api/v1/main/executions/${encodeURIComponent(executionId)}/file?path=${encodeURIComponent(uri)}`;
}

function scalar(value, executionId) {
  if (typeof value === "string" && executionId && /^kestra:\/\/\/\S+$/.test(value)) {
    const name = esc(value.replace(/\/+$/, "").split("/").pop());
    return `<a class="kn-file" href="${esc(fileUrl(executionId, value))}" data-uri="${esc(value)}" target="_blank" rel="noopener" download="${name}" title="Download ${name}">` +
      `<span class="kn-str">${esc(JSON.stringify(value))}</span></a>`;
  }
  if (typeof value === "string") return `<span class="kn-str">${esc(JSON.stringify(value))}</span>`;
  if (typeof value === "number") return `<span class="kn-num">${esc(JSON.stringify(value))}</span>`;
  if (value === null || typeof value === "boolean") return `<span class="kn-lit">${JSON.stringify(value)}</span>`;
  if (Array.isArray(value)) return '<span class="kn-muted">[]</span>';
  if (typeof value === "object") return '<span class="kn-muted">{}</span>';
  return esc(String(value));
}

function tree(value, key, depth, openDepth, executionId) {
  const name = key !== null ? `<span class="kn-key">${esc(key)}</span>: ` : "";
  const isList = Array.isArray(value);
  if (value && typeof value === "object" && (isList ? value.length : Object.keys(value).length)) {
    const entries = isList ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const items = entries.map(([k, v]) => tree(v, k, depth + 1, openDepth, executionId)).join("");
    const count = isList ? `[${value.length}]` : `{${entries.length}}`;
    return `<details${depth < openDepth ? " open" : ""}><summary>${name}<span class="kn-muted">${count}</span></summary><div class="kn-children">${items}</div></details>`;
  }
  return `<div>${name}${scalar(value, executionId)}</div>`;
}

function outputsPane(outputs, taskOutputs, executionId) {
  const parts = ['<div class="kn-json kn-outputs">'];
  parts.push(Object.keys(outputs || {}).length ? tree(outputs, "outputs", 0, 2, executionId) : '<div class="kn-muted">No flow outputs</div>');
  if (taskOutputs && taskOutputs.length) {
    const tasks = {};
    for (const t of taskOutputs) tasks[t.task + (t.value !== null && t.value !== undefined ? `[${t.value}]` : "")] = t.outputs;
    parts.push(tree(tasks, "task outputs", 0, 0, executionId));
  }
  parts.push("</div>");
  return parts.join("");
}

function logsTable(logs, task, minLevel) {
  const floor = LEVELS.indexOf(minLevel);
  const shown = logs.filter((l) => (task === "" || l.task === task) && LEVELS.indexOf(l.level) >= floor);
  if (!shown.length) return '<div class="kn-muted">No logs</div>';
  return '<table class="kn-logs">' + shown.map((l) => {
    const name = (l.task || "") + (l.value !== null && l.value !== undefined ? `[${l.value}]` : "");
    return `<tr data-level="${esc(l.level)}"><td class="kn-muted">${fmt(l.t)}</td>` +
      `<td style="color:${LEVEL_COLORS[l.level] || "#918BA9"};font-weight:600">${esc(l.level)}</td>` +
      `<td>${esc(name)}</td><td class="kn-msg">${esc(l.message)}</td></tr>`;
  }).join("") + "</table>";
}

function render({model, el}) {
  el.innerHTML = "";
  const root = document.createElement("div");
  root.className = "kn-view kn-live";
  root.innerHTML = '<div class="kn-top"></div><div class="kn-error" style="color:#AB0009"></div><div class="kn-timeline"></div>' +
    '<div class="kn-tabs"><button class="kn-tab kn-active" data-tab="outputs">Outputs</button>' +
    '<button class="kn-tab" data-tab="logs">Logs</button><button class="kn-tab" data-tab="json">Execution JSON</button></div>' +
    '<div class="kn-pane" data-pane="outputs"></div>' +
    '<div class="kn-pane" data-pane="logs" hidden><div class="kn-filters">Task <select class="kn-task"></select> ' +
    'Level <select class="kn-level"></select></div><div class="kn-logbody"></div></div>' +
    '<div class="kn-pane" data-pane="json" hidden><pre class="kn-pre"></pre></div>';
  el.appendChild(root);
  const $ = (selector) => root.querySelector(selector);
  let tab = "outputs";
  let task = "";
  let level = "TRACE";
  const folded = new Set();  // subflow rows whose child executions are hidden
  $(".kn-level").innerHTML = LEVELS.map((l) => `<option value="${l}">${l}</option>`).join("");

  const drawTop = () => {
    const colors = model.get("colors") || {};
    const summary = model.get("summary") || {};
    const now = model.get("now") || 0;
    $(".kn-top").innerHTML = header(summary, now, colors);
    $(".kn-timeline").innerHTML = timeline(summary, model.get("runs") || [], now, colors, folded);
    $(".kn-error").textContent = model.get("error") || "";
  };
  const drawOutputs = () => {
    $('[data-pane="outputs"]').innerHTML = outputsPane(model.get("outputs"), model.get("task_outputs"), (model.get("summary") || {}).id);
  };
  const drawLogs = () => {
    const logs = model.get("logs") || [];
    const tasks = [...new Set(logs.map((l) => l.task).filter((t) => t))];
    if (task && !tasks.includes(task)) tasks.push(task);
    $(".kn-task").innerHTML = '<option value="">all</option>' +
      tasks.map((t) => `<option value="${esc(t)}"${t === task ? " selected" : ""}>${esc(t)}</option>`).join("");
    $(".kn-level").value = level;
    $(".kn-logbody").innerHTML = logsTable(logs, task, level);
    $('[data-tab="logs"]').textContent = `Logs (${logs.length})`;
  };
  const drawJson = () => {
    if (tab === "json") $('[data-pane="json"] pre').textContent = JSON.stringify(model.get("document") || {}, null, 2);
  };
  const show = (name) => {
    tab = name;
    for (const button of root.querySelectorAll(".kn-tab")) button.classList.toggle("kn-active", button.dataset.tab === name);
    for (const pane of root.querySelectorAll(".kn-pane")) pane.hidden = pane.dataset.pane !== name;
    drawJson();
  };
  for (const button of root.querySelectorAll(".kn-tab")) button.addEventListener("click", () => show(button.dataset.tab));
  $(".kn-timeline").addEventListener("click", (event) => {
    const fold = event.target.closest(".kn-fold");
    const row = fold && fold.closest(".kn-row");
    if (!row) return;
    if (folded.has(row.dataset.id)) folded.delete(row.dataset.id); else folded.add(row.dataset.id);
    drawTop();
  });
  $(".kn-task").addEventListener("change", (event) => { task = event.target.value; drawLogs(); });
  $(".kn-level").addEventListener("change", (event) => { level = event.target.value; drawLogs(); });

  const handlers = [
    ["change:summary change:runs change:now change:error change:colors", drawTop],
    ["change:outputs change:task_outputs", drawOutputs],
    ["change:logs", drawLogs],
    ["change:document", drawJson],
  ];
  // one event name per call: the model anywidget hands over need not understand space-separated lists
  for (const [events, handler] of handlers) for (const name of events.split(" ")) model.on(name, handler);
  drawTop();
  drawOutputs();
  drawLogs();
  return () => {
    for (const [events, handler] of handlers) for (const name of events.split(" ")) model.off(name, handler);
  };
}

export default { render };
