// The execution view, ONE ES module for every host: the JupyterLab / Notebook 7 mime renderer of
// application/vnd.kestra.execution+json (js/src/index.ts), and the standalone server's pages. It draws a
// view-model state (kestra_nb/jupyter/display.py `view_state`): header (with the error first when there is
// one), Gantt timeline with a time axis (a click on a row shows that task run's outputs and logs), then tabs for
// Outputs, Logs (task and level filters) and the flow's Topology. Every value from a flow is
// escaped: this runs in a page that holds the Jupyter token.

import { esc, topology } from "./topology.js";

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

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

function header(summary, now, colors, error) {
  const state = summary.state || "CREATED";
  const total = summary.end !== null && summary.end !== undefined ? summary.end : now;
  const labels = (summary.labels || []).map((l) => `<span class="kn-label-chip">${esc(l)}</span>`).join("");
  const revision = summary.revision ? ` <span class="kn-muted">rev ${esc(summary.revision)}</span>` : "";
  return `<div class="kn-head"><span class="kn-badge" data-state="${esc(state)}" style="background:${colors[state] || "#918BA9"}">${esc(state)}</span>` +
    `<span class="kn-flow">${esc(summary.namespace || "")}.${esc(summary.flowId || "")}</span>${revision}` +
    `<span class="kn-muted kn-exid">${esc(summary.id || "")}</span>${labels}` +
    `<span class="kn-total" title="total duration">${fmt(total)}</span></div>` +
    (error ? `<div class="kn-error" role="alert">${esc(error)}</div>` : "") +
    (summary.hint ? `<div class="kn-hint">${esc(summary.hint)}</div>` : "");
}

// A time scale over the tracks: ticks at a round step (1, 2 or 5 × a power of ten ms), about four of them.
function axis(total) {
  const rough = total / 4;
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) || rough;
  const ticks = [];
  for (let t = 0; t <= total + 1e-9 && ticks.length < 12; t += step) {
    ticks.push(`<span class="kn-tick" style="left:${pct(t, total)}%">${t === 0 ? "0" : fmt(t)}</span>`);
  }
  return `<div class="kn-row kn-axis" aria-hidden="true"><div class="kn-label"></div><div class="kn-track">${ticks.join("")}</div>` +
    '<div class="kn-dur"></div></div>';
}

// One task run's outputs and log lines (a click on its row in the timeline).
function detail(row, state, executionId) {
  const same = (item) => item.task === row.task && (item.value ?? null) === (row.value ?? null);
  const found = (state.task_outputs || []).find(same);
  const logs = (state.logs || []).filter(same);
  const name = esc(row.task) + (row.value !== null && row.value !== undefined ? ` [${esc(row.value)}]` : "");
  const outputs = found && Object.keys(found.outputs || {}).length ? tree(found.outputs, "outputs", 0, 2, executionId)
    : '<div class="kn-muted">No outputs</div>';
  return `<div class="kn-detail-head"><b>${name}</b> <span class="kn-badge" data-state="${esc(row.state)}" ` +
    `style="background:${(state.colors || {})[row.state] || "#918BA9"}">${esc(row.state)}</span> ` +
    `<span class="kn-muted">${esc(row.id)}</span><button class="kn-act kn-close" title="close">&#x2715;</button></div>` +
    `<div class="kn-json">${outputs}</div>${logsTable(logs, "", "TRACE", 0)}`;
}

// Rows of child executions (subflows) carry `under`: the subflow rows they are nested in; a folded one hides them.
function timeline(summary, rows, now, colors, folded, hidden, link) {
  if (!rows.length) return '<div class="kn-tl"><div class="kn-empty">No task run yet</div></div>';
  let total = summary.end !== null && summary.end !== undefined ? summary.end : now;
  for (const r of rows) total = Math.max(total, r.end || 0);
  total = Math.max(total, 0.001);
  const out = ['<div class="kn-tl">', axis(total)];
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
      `<div class="kn-label" style="padding-left:${(r.depth || 0) * 14}px">${fold}` +
      (r.kind === "execution" && link ? `<a class="kn-child" href="${esc(link(r))}">${esc(r.task)}</a>` : esc(r.task)) +
      `${value}${attempts}</div>` +
      `<div class="kn-track"><div class="kn-queued" data-state="${r.state}" style="left:${pct(r.created, total)}%;width:${pct(queuedTo - r.created, total)}%;background:${fill}"></div>${bar}</div>` +
      `<div class="kn-dur">${fmt(end - r.created)}</div></div>`);
  }
  if (hidden) out.push(`<div class="kn-more">${hidden} more task runs not shown here (the API and \`%flow show\` have them all)</div>`);
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

function logsTable(logs, task, minLevel, hidden) {
  const floor = LEVELS.indexOf(minLevel);
  const shown = logs.filter((l) => (task === "" || l.task === task) && LEVELS.indexOf(l.level) >= floor);
  const earlier = hidden ? `<div class="kn-more">${hidden} earlier log lines not shown here</div>` : "";
  if (!shown.length) return earlier + '<div class="kn-muted">No logs</div>';
  return earlier + '<table class="kn-logs">' + shown.map((l) => {
    const name = (l.task || "") + (l.value !== null && l.value !== undefined ? `[${l.value}]` : "");
    return `<tr data-level="${esc(l.level)}"><td class="kn-muted">${fmt(l.t)}</td>` +
      `<td class="kn-lvl" data-level="${esc(l.level)}">${esc(l.level)}</td>` +
      `<td>${esc(name)}</td><td class="kn-msg">${esc(l.message)}</td></tr>`;
  }).join("") + "</table>";
}

// The output's data (display.py `bundle`): the summary, and the rest of the view as one JSON text.
export function decode(data) {
  if (!data) return {};
  if (typeof data.view !== "string") return data;
  try {
    return Object.assign(JSON.parse(data.view), {summary: data.summary || {}});
  } catch (error) {
    return {summary: data.summary || {}, error: "This output's view could not be read: " + error};
  }
}

const RUNNING_STATES = new Set(["CREATED", "RUNNING", "RESTARTED", "QUEUED", "RETRYING", "SUBMITTED", "BREAKPOINT"]);
const ENDED = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"]);

// The action buttons a state allows (Kestra's rules: kill while running or paused, resume while paused,
// restart a failed or killed one, replay an ended one from a chosen task run).
function actionsBar(summary, rows, pages) {
  const state = summary.state || "";
  const buttons = [];
  if (state === "RUNNING") buttons.push('<button class="kn-act" data-action="pause">Pause</button>');
  if (state === "PAUSED") buttons.push('<button class="kn-act" data-action="resume">Resume…</button>');
  if (RUNNING_STATES.has(state) || state === "PAUSED" ) buttons.push('<button class="kn-act" data-action="kill">Kill</button>');
  if (["FAILED", "KILLED", "WARNING"].includes(state)) buttons.push('<button class="kn-act" data-action="restart">Restart</button>');
  if (ENDED.has(state)) {
    const options = ['<option value="">the start</option>'].concat(rows.filter((r) => !r.execution).map((r) =>
      `<option value="${esc(r.id)}">${esc(r.task)}${r.value !== null && r.value !== undefined ? ` [${esc(r.value)}]` : ""}</option>`));
    buttons.push(`<button class="kn-act" data-action="replay">Replay from</button><select class="kn-replay-from">${options.join("")}</select>`);
    if (pages) {   // on a /ui/ page (not in a notebook's output): labels and delete, as Kestra's execution page
      buttons.push('<button class="kn-act" data-action="labels">Labels…</button>');
      buttons.push('<button class="kn-act" data-action="delete">Delete</button>');
    }
  }
  return buttons.join("");
}

// The Pause task's onResume inputs, found in the flow's JSON (its tasks at any depth).
function findOnResume(node, taskId) {
  if (!node || typeof node !== "object") return null;
  if (!Array.isArray(node) && node.id === taskId && Array.isArray(node.onResume)) return node.onResume;
  for (const value of Array.isArray(node) ? node : Object.values(node)) {
    const found = findOnResume(value, taskId);
    if (found) return found;
  }
  return null;
}

function resumeForm(inputs) {
  const fields = inputs.map((input) => {
    const name = esc(input.id);
    const type = String(input.type || "STRING").toUpperCase();
    const required = input.required !== false && input.defaults === undefined;
    const value = input.defaults !== undefined && input.defaults !== null ? ` value="${esc(typeof input.defaults === "string" ? input.defaults : JSON.stringify(input.defaults))}"` : "";
    const control = type === "FILE" ? `<input type="file" name="${name}"${required ? " required" : ""}>`
      : type === "BOOLEAN" ? `<select name="${name}"><option>true</option><option>false</option></select>`
      : `<input type="text" name="${name}"${value}${required ? " required" : ""}>`;
    return `<label class="kn-field"><span>${name}${required ? " *" : ""} <span class="kn-muted">${esc(type)}</span></span>${control}</label>`;
  });
  return `<form class="kn-resume">${fields.join("")}<button type="submit" class="kn-act">Resume</button> ` +
    '<button type="button" class="kn-act kn-cancel">Cancel</button></form>';
}

// What an API answer says: Kestra's error envelope's message, or the status.
export function answerText(answer) {
  if (answer.json && typeof answer.json.message === "string") return answer.json.message;
  return answer.text ? answer.text.slice(0, 500) : `HTTP ${answer.status}`;
}

// Mount the view in `el`; `update(state)` redraws it from a view-model state, `dispose()` removes it.
// With `options.api(method, path, body)` (the host's authenticated call of Kestra's API, paths relative to
// `…/api/v1/main/`, answering {status, json, text}), the view offers the actions its state allows.
export function mount(el, options = {}) {
  const api = options.api || null;
  el.textContent = "";
  const root = document.createElement("div");
  root.className = "kn-view kn-live";
  root.innerHTML = '<div class="kn-top"></div><div class="kn-actions"></div><div class="kn-action-msg" role="status"></div>' +
    '<div class="kn-form"></div><div class="kn-timeline"></div><div class="kn-detail" hidden></div>' +
    '<div class="kn-tabs"><button class="kn-tab kn-active" data-tab="outputs">Outputs</button>' +
    '<button class="kn-tab" data-tab="logs">Logs</button><button class="kn-tab" data-tab="topology" hidden>Topology</button></div>' +
    '<div class="kn-pane" data-pane="outputs"></div>' +
    '<div class="kn-pane" data-pane="topology" hidden></div>' +
    '<div class="kn-pane" data-pane="logs" hidden><div class="kn-filters">Task <select class="kn-task"></select> ' +
    'Level <select class="kn-level"></select></div><div class="kn-logbody"></div></div>';
  el.appendChild(root);
  const $ = (selector) => root.querySelector(selector);
  let state = {};
  let tab = "outputs";
  let task = "";
  let level = "TRACE";
  let chosen = false;        // the user picked a tab or a filter: never switch it for them
  const folded = new Set();  // subflow rows whose child executions are hidden
  let selected = "";         // the task run whose outputs and logs are shown under the timeline
  $(".kn-level").innerHTML = LEVELS.map((l) => `<option value="${l}">${l}</option>`).join("");

  const drawTop = () => {
    const colors = state.colors || {};
    const summary = state.summary || {};
    const now = state.now || 0;
    $(".kn-top").innerHTML = header(summary, now, colors, state.error || summary.error || "");
    $(".kn-timeline").innerHTML = timeline(summary, state.runs || [], now, colors, folded, (state.hidden || {}).runs || 0,
      options.pages && options.pages.link);
    if (api) {
      const bar = actionsBar(summary, state.runs || [], !!options.pages);
      const key = `${summary.id}|${summary.state}|${(state.runs || []).length}`;
      if ($(".kn-actions").dataset.key !== key) {   // (not redrawn on every tick: a chosen replay point stays)
        $(".kn-actions").dataset.key = key;
        $(".kn-actions").innerHTML = bar;
      }
    }
  };
  const drawDetail = () => {
    const row = selected && (state.runs || []).find((r) => r.id === selected);
    $(".kn-detail").hidden = !row;
    $(".kn-detail").innerHTML = row ? detail(row, state, (state.summary || {}).id) : "";
    for (const el of root.querySelectorAll(".kn-row.kn-selected")) el.classList.remove("kn-selected");
    const chosenRow = row && root.querySelector(`.kn-row[data-id="${CSS.escape(row.id)}"]`);
    if (chosenRow) chosenRow.classList.add("kn-selected");
  };
  const drawTopology = () => {
    const graph = state.graph;
    $('[data-tab="topology"]').hidden = !graph;
    $('[data-pane="topology"]').innerHTML = graph ? topology(graph, state.task_states || {}, state.colors || {}) : "";
    if (!graph && tab === "topology") show("outputs");
  };
  const drawOutputs = () => {
    $('[data-pane="outputs"]').innerHTML = outputsPane(state.outputs, state.task_outputs, (state.summary || {}).id);
  };
  const drawLogs = () => {
    const logs = state.logs || [];
    const tasks = [...new Set(logs.map((l) => l.task).filter((t) => t))];
    if (task && !tasks.includes(task)) tasks.push(task);
    $(".kn-task").innerHTML = '<option value="">all</option>' +
      tasks.map((t) => `<option value="${esc(t)}"${t === task ? " selected" : ""}>${esc(t)}</option>`).join("");
    $(".kn-level").value = level;
    const hidden = (state.hidden || {}).logs || 0;
    $(".kn-logbody").innerHTML = logsTable(logs, task, level, hidden);
    $('[data-tab="logs"]').textContent = `Logs (${logs.length + hidden})`;
  };
  const show = (name) => {
    tab = name;
    for (const button of root.querySelectorAll(".kn-tab")) button.classList.toggle("kn-active", button.dataset.tab === name);
    for (const pane of root.querySelectorAll(".kn-pane")) pane.hidden = pane.dataset.pane !== name;
  };
  for (const button of root.querySelectorAll(".kn-tab")) button.addEventListener("click", () => { chosen = true; show(button.dataset.tab); });
  $(".kn-timeline").addEventListener("click", (event) => {
    const fold = event.target.closest(".kn-fold");
    const row = event.target.closest(".kn-row[data-id]");
    if (!row) return;
    if (fold) {
      if (folded.has(row.dataset.id)) folded.delete(row.dataset.id); else folded.add(row.dataset.id);
    } else {
      selected = selected === row.dataset.id ? "" : row.dataset.id;
    }
    drawTop();
    drawDetail();
  });
  $(".kn-detail").addEventListener("click", (event) => {
    if (event.target.closest(".kn-close")) { selected = ""; drawDetail(); }
  });
  const say = (text, failed) => {
    const msg = $(".kn-action-msg");
    msg.textContent = text;
    msg.classList.toggle("kn-failed", !!failed);
  };
  let following = 0;
  // after an action: the execution's state as the API gives it, until it ends (the cell may be gone)
  const follow = async (executionId) => {
    const mine = ++following;
    for (let i = 0; i < 600 && mine === following; i++) {
      const answer = await api("GET", `executions/${encodeURIComponent(executionId)}`);
      if (answer.status !== 200 || !answer.json) return;
      const current = answer.json.state.current;
      if (state.summary && state.summary.id === executionId && state.summary.state !== current) {
        state.summary = Object.assign({}, state.summary, {state: current});
        drawTop();
      }
      say(`Execution ${executionId}: ${current}`);
      if (ENDED.has(current)) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  const act = async (action) => {
    const summary = state.summary || {};
    const id = encodeURIComponent(summary.id || "");
    say(`${action}…`);
    let answer;
    if (action === "kill") answer = await api("DELETE", `executions/${id}/kill`);
    else if (action === "pause") answer = await api("POST", `executions/${id}/pause`);
    else if (action === "delete") {
      answer = await api("DELETE", `executions/${id}`);
      if (answer.status < 400) { say("deleted"); if (options.pages) options.pages.deleted(summary); return; }
    } else if (action === "labels") {
      const current = (summary.labels || []).join(", ");
      $(".kn-form").innerHTML = '<form class="kn-labels"><label class="kn-field"><span>Labels (key:value, comma separated)</span>' +
        `<input name="labels" value="${esc(current)}" size="40"></label><button type="submit" class="kn-act">Save</button> ` +
        '<button type="button" class="kn-act kn-cancel">Cancel</button></form>';
      say("");
      return;
    }
    else if (action === "restart") answer = await api("POST", `executions/${id}/restart`);
    else if (action === "replay") {
      const from = $(".kn-replay-from").value;
      answer = await api("POST", `executions/${id}/replay` + (from ? `?taskRunId=${encodeURIComponent(from)}` : ""));
    } else if (action === "resume") {
      const paused = (state.runs || []).filter((r) => r.state === "PAUSED" && !r.execution).pop();
      const flow = await api("GET", `flows/${encodeURIComponent(summary.namespace)}/${encodeURIComponent(summary.flowId)}` +
        (summary.revision ? `?revision=${summary.revision}` : ""));
      const inputs = (paused && flow.status === 200 && findOnResume(flow.json, paused.task)) || [];
      if (!inputs.length) {
        answer = await api("POST", `executions/${id}/resume`, new FormData());
      } else {
        $(".kn-form").innerHTML = resumeForm(inputs);
        say("");
        return;
      }
    }
    if (answer.status >= 400) { say(answerText(answer), true); return; }
    const made = answer.json && answer.json.id && answer.json.id !== summary.id ? answer.json.id : summary.id;
    say(`${action}: done` + (made !== summary.id ? `, as execution ${made}` : ""));
    follow(made);
  };
  $(".kn-actions").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button && api) act(button.dataset.action).catch((error) => say(String(error), true));
  });
  $(".kn-form").addEventListener("click", (event) => {
    if (event.target.closest(".kn-cancel")) $(".kn-form").textContent = "";
  });
  $(".kn-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target.closest("form");
    if (form.classList.contains("kn-labels")) {
      const labels = String(new FormData(form).get("labels") || "").split(",").map((t) => t.trim()).filter((t) => t)
        .map((t) => { const i = t.indexOf(":"); return { key: i < 0 ? t : t.slice(0, i).trim(), value: i < 0 ? "" : t.slice(i + 1).trim() }; });
      const id = encodeURIComponent((state.summary || {}).id || "");   // (the server keeps the system labels)
      api("POST", `executions/${id}/labels`, new Blob([JSON.stringify(labels)], { type: "application/json" }))
        .then((answer) => {
          if (answer.status >= 400) { say(answerText(answer), true); return; }
          $(".kn-form").textContent = "";
          say("labels: saved");
          if (answer.json && answer.json.labels) {
            state.summary = Object.assign({}, state.summary, { labels: answer.json.labels
              .filter((l) => !String(l.key).startsWith("system.")).map((l) => `${l.key}:${l.value}`) });
            drawTop();
          }
        }).catch((error) => say(String(error), true));
      return;
    }
    const body = new FormData(form);
    for (const [key, value] of [...body.entries()]) if (value instanceof File && !value.name) body.delete(key);
    const id = encodeURIComponent((state.summary || {}).id || "");
    say("resume…");
    api("POST", `executions/${id}/resume`, body).then((answer) => {
      if (answer.status >= 400) { say(answerText(answer), true); return; }
      $(".kn-form").textContent = "";
      say("resume: done");
      follow((state.summary || {}).id);
    }).catch((error) => say(String(error), true));
  });
  $(".kn-task").addEventListener("change", (event) => { chosen = true; task = event.target.value; drawLogs(); });
  $(".kn-level").addEventListener("change", (event) => { chosen = true; level = event.target.value; drawLogs(); });

  return {
    update(next) {
      state = decode(next);
      // what went wrong first: a failed execution opens on its error logs, until the user chooses otherwise
      if (!chosen && (state.summary || {}).state === "FAILED" && (state.logs || []).some((l) => l.level === "ERROR")) {
        level = "ERROR";
        show("logs");
      }
      drawTop();
      drawDetail();
      drawOutputs();
      drawTopology();
      drawLogs();
    },
    dispose() {
      el.textContent = "";
    },
  };
}
