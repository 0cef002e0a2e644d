// An execution's logs page (/ui/main/executions/{namespace}/{flowId}/{id}/logs): a level filter with Kestra's
// meaning (that level and the more severe ones: the API's `minLevel`), a task-run filter, a download of what
// is shown (the API's logs download route), and, while the execution runs, live lines through the API's
// server-sent events (`GET …/logs/{id}/follow`). Bounded: at most MAX_LINES lines stay in the page (the oldest
// go first, and the page says how many); the streams are closed while the page is hidden (a hidden tab, a
// collapsed Kestra panel) and when it is left, and opened again (from the first line) when it is seen.
import { unseen, watchSeen } from "./api.js";
import { esc } from "./topology.js";
import { answerText } from "./view.js";

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
export const MAX_LINES = 2000;
const ENDED = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"]);

function when(text) {
  const date = new Date(text);
  return isNaN(date) ? esc(text || "") : esc(date.toLocaleTimeString(undefined, { hour12: false }) +
    "." + String(date.getMilliseconds()).padStart(3, "0"));
}

// `root` gets the page; `base` is the server's prefix, `api` the page's authenticated call (api.js).
export async function logsPage(root, executionId, { base, api }) {
  const enc = encodeURIComponent;
  root.insertAdjacentHTML("beforeend", '<section class="kn-logs-page"><form class="kn-filterbar">' +
    `<label>Level <select name="minLevel">${LEVELS.map((l) => `<option${l === "INFO" ? " selected" : ""}>${l}</option>`).join("")}` +
    '</select></label><label>Task run <select name="taskRunId"><option value="">all</option></select></label>' +
    '<label><input type="checkbox" name="follow" checked> follow</label>' +
    '<a class="kn-download" download>Download</a><span class="kn-log-status kn-muted" role="status"></span></form>' +
    '<div class="kn-more" hidden></div><div class="kn-logscroll"><table class="kn-logs"><tbody></tbody></table>' +
    '<div class="kn-muted kn-nologs">No logs</div></div></section>');
  const section = root.lastElementChild;
  const form = section.querySelector("form");
  const body = section.querySelector("tbody");
  const scroller = section.querySelector(".kn-logscroll");
  const more = section.querySelector(".kn-more");
  const status = section.querySelector(".kn-log-status");
  const level = form.elements.minLevel;
  const taskRun = form.elements.taskRunId;
  const follow = form.elements.follow;
  let streams = [];     // the open EventSources
  let dropped = 0;      // lines that came but are no longer in the page
  let ended = false;    // the execution has ended: its logs are read once, not followed
  let pending = [];     // lines to draw on the next frame
  const names = new Map();   // task run id -> its label in the task-run filter

  const execution = await api("GET", `executions/${enc(executionId)}`);
  if (execution.status !== 200) {
    section.innerHTML = `<p class="kn-error" role="alert">${esc(answerText(execution))}</p>`;
    return { close() {} };
  }
  const taskRuns = (document) => {
    let added = false;
    for (const tr of document.taskRunList || []) {
      if (names.has(tr.id)) continue;
      names.set(tr.id, tr.taskId + (tr.value !== undefined && tr.value !== null ? ` [${tr.value}]` : ""));
      taskRun.insertAdjacentHTML("beforeend", `<option value="${esc(tr.id)}">${esc(names.get(tr.id))}</option>`);
      added = true;
    }
    return added;
  };
  taskRuns(execution.json);
  ended = ENDED.has(execution.json.state.current);

  const query = () => {
    const p = new URLSearchParams({ minLevel: level.value });
    if (taskRun.value) p.set("taskRunId", taskRun.value);
    return p;
  };
  const downloadLink = () => {
    section.querySelector(".kn-download").href = `${base}/api/v1/main/logs/${enc(executionId)}/download?${query()}`;
  };
  const counted = () => {
    more.hidden = !dropped;
    more.textContent = dropped ? `${dropped} earlier line${dropped === 1 ? "" : "s"} not kept here (the page keeps the last ${MAX_LINES}; Download has them all)` : "";
    section.querySelector(".kn-nologs").hidden = body.childElementCount > 0;
  };
  const row = (entry) => {
    const tr = document.createElement("tr");
    tr.dataset.level = entry.level;
    if (entry.taskRunId) tr.dataset.taskRun = entry.taskRunId;
    const task = entry.taskRunId && names.has(entry.taskRunId) ? names.get(entry.taskRunId) : entry.taskId || "";
    tr.innerHTML = `<td class="kn-muted">${when(entry.timestamp)}</td><td class="kn-lvl" data-level="${esc(entry.level)}">` +
      `${esc(entry.level)}</td><td>${esc(task)}</td><td class="kn-msg">${esc(entry.message)}</td>`;
    return tr;
  };
  let frame = 0;
  const flush = () => {
    frame = 0;
    const atEnd = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
    if (pending.length > MAX_LINES) {   // a burst larger than what is kept: only its end is drawn
      dropped += pending.length - MAX_LINES;
      pending = pending.slice(-MAX_LINES);
    }
    const fragment = document.createDocumentFragment();
    for (const entry of pending) fragment.appendChild(row(entry));
    pending = [];
    body.appendChild(fragment);
    while (body.childElementCount > MAX_LINES) { body.firstElementChild.remove(); dropped++; }
    counted();
    if (atEnd) scroller.scrollTop = scroller.scrollHeight;
  };
  const add = (entry) => {
    if (taskRun.value && entry.taskRunId !== taskRun.value) return;   // (the stream filters by level only)
    pending.push(entry);
    if (pending.length > 4 * MAX_LINES) pending = pending.slice(-MAX_LINES);   // bounded while not drawn yet
    if (!frame) frame = requestAnimationFrame(flush);
  };
  const clear = () => {
    body.textContent = "";
    pending = [];
    dropped = 0;
    counted();
  };
  const close = () => {
    for (const stream of streams) stream.close();
    streams = [];
  };
  // the logs as stored, once (an ended execution, or the end of a followed one): the last MAX_LINES of them
  const read = async () => {
    close();
    status.textContent = "reading…";
    const answer = await api("GET", `logs/${enc(executionId)}?${query()}`);
    if (answer.status !== 200) { status.textContent = answerText(answer); return; }
    clear();
    answer.json.forEach(add);
    status.textContent = ended ? "the execution has ended" : "not following";
  };
  const open = () => {
    close();
    if (ended || !follow.checked) { read(); return; }
    if (unseen()) return;
    const logs = new EventSource(`${base}/api/v1/main/logs/${enc(executionId)}/follow?minLevel=${enc(level.value)}`,
      { withCredentials: true });
    // every (re)connection sends the stored lines again from the first: the page starts over with it
    logs.addEventListener("open", () => { clear(); status.textContent = "following"; });
    logs.addEventListener("message", (event) => {
      try { add(JSON.parse(event.data)); } catch (error) { /* not a log entry: skipped */ }
    });
    logs.addEventListener("error", () => { status.textContent = "reconnecting…"; });
    const state = new EventSource(`${base}/api/v1/main/executions/${enc(executionId)}/follow`, { withCredentials: true });
    state.addEventListener("message", (event) => {
      let document = null;
      try { document = JSON.parse(event.data); } catch (error) { return; }
      if (document.taskRunList) taskRuns(document);
      if (event.lastEventId === "end") {   // ended: what is stored is the whole of it
        ended = true;
        read();
      }
    });
    streams = [logs, state];
  };
  form.addEventListener("change", (event) => {
    downloadLink();
    if (event.target === follow && !follow.checked) { close(); status.textContent = "not following"; return; }
    open();
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  const stop = watchSeen((seen) => {
    if (!seen) { close(); status.textContent = "paused while hidden"; } else if (!streams.length && !ended && follow.checked) open();
  });
  window.addEventListener("pagehide", close);
  downloadLink();
  open();
  return { close() { close(); stop(); }, streams: () => streams.length };
}
