// A flow page's source: read (highlighted), edited in a plain text area that the API validates (`POST
// …/flows/validate`, its messages listed with their line, the lines marked in the gutter), saved as a new
// revision (`PUT …/flows/{namespace}/{id}`), or deleted after a confirmation (`DELETE`, the revisions are kept);
// and two of its revisions compared line by line (diff.js). Everything through the page's API call (api.js).
import { diffHtml, lineDiff } from "./diff.js";
import { esc } from "./topology.js";
import { answerText } from "./view.js";

const YAML = "application/x-yaml";
const MAX_SOURCE = 1024 * 1024;   // characters: what the editor sends at most (the API has its own limit)

// A validation text (`path: message (line L, column C), path: message …`) as [{message, line}]: each problem
// ends at its location, so a message that holds ", " stays whole.
export function problems(text) {
  const out = [];
  const pattern = /(.*?)\s*\(line (\d+), column (\d+)\)(?:,\s*|\s*$)/gs;
  let rest = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    out.push({ message: match[1].replace(/^[\s,-]+/, ""), line: Number(match[2]), column: Number(match[3]) });
    rest = pattern.lastIndex;
  }
  const tail = text.slice(rest).replace(/^[\s,-]+/, "").trim();
  if (tail) out.push({ message: tail, line: null, column: null });
  return out;
}

export function highlight(source) {
  return esc(source).split("\n").map((line) => line.replace(/^(\s*-?\s*)([\w.@-]+)(:)/,
    (all, lead, key, colon) => `${lead}<span class="kn-key">${key}</span>${colon}`)).join("\n");
}

// Wire the source box of a flow page: `box` holds the read view; `revisions` are the API's (with their source).
export function flowSource(box, { namespace, id, source, revisions, api, saved, deleted }) {
  const enc = encodeURIComponent;
  const path = `flows/${enc(namespace)}/${enc(id)}`;
  const read = () => {
    box.innerHTML = '<p class="kn-source-actions"><button type="button" class="kn-act" data-edit="edit">Edit</button> ' +
      '<button type="button" class="kn-act" data-edit="delete">Delete</button></p><div class="kn-confirm"></div>' +
      `<pre class="kn-pre kn-source">${highlight(source)}</pre>`;
  };
  const edit = () => {
    box.innerHTML = '<div class="kn-editor"><div class="kn-editor-wrap"><pre class="kn-gutter kn-pre" aria-hidden="true"></pre>' +
      `<textarea class="kn-pre" name="source" spellcheck="false" wrap="off" aria-label="Flow source" maxlength="${MAX_SOURCE}"></textarea></div>` +
      '<p><button type="button" class="kn-act" data-edit="validate">Validate</button> ' +
      '<button type="button" class="kn-act" data-edit="save">Save</button> ' +
      '<button type="button" class="kn-act" data-edit="cancel">Cancel</button> <span class="kn-edit-msg" role="status"></span></p>' +
      '<ul class="kn-problems" role="alert"></ul></div>';
    const area = box.querySelector("textarea");
    area.value = source;
    gutter([]);
    area.addEventListener("input", () => gutter([]));
    area.addEventListener("scroll", () => { box.querySelector(".kn-gutter").scrollTop = area.scrollTop; });
    area.focus();
  };
  // line numbers beside the text, the lines with a problem marked
  const gutter = (found) => {
    const area = box.querySelector("textarea");
    const bad = new Set(found.map((p) => p.line).filter((line) => line));
    const count = area.value.split("\n").length;
    const numbers = [];
    for (let i = 1; i <= count; i++) numbers.push(bad.has(i) ? `<span class="kn-bad" data-line="${i}">${i}</span>` : String(i));
    const el = box.querySelector(".kn-gutter");
    el.innerHTML = numbers.join("\n") + "\n";
    el.scrollTop = area.scrollTop;
  };
  const say = (text, failed) => {
    const msg = box.querySelector(".kn-edit-msg");
    msg.textContent = text;
    msg.classList.toggle("kn-failed", !!failed);
  };
  const show = (found) => {
    box.querySelector(".kn-problems").innerHTML = found.map((p) => `<li data-line="${p.line ?? ""}">` +
      (p.line ? `<button type="button" class="kn-linkish" data-goto="${p.line}">line ${p.line}</button>: ` : "") +
      `${esc(p.message)}</li>`).join("");
    gutter(found);
  };
  const body = () => new Blob([box.querySelector("textarea").value], { type: YAML });
  const validate = async () => {
    say("validating…");
    const answer = await api("POST", "flows/validate", body());
    if (answer.status !== 200 || !Array.isArray(answer.json)) { say(answerText(answer), true); show([]); return false; }
    const found = [];
    for (const item of answer.json) {
      if (item.constraints) found.push(...problems(item.constraints));
      for (const warning of item.warnings || []) found.push({ message: `warning: ${warning}`, line: null });
    }
    if (answer.json.length > 1) found.push({ message: "one flow per source: this holds several YAML documents", line: null });
    const errors = answer.json.some((item) => item.constraints) || answer.json.length !== 1;
    show(found);
    say(errors ? `${found.length} problem${found.length === 1 ? "" : "s"}` : "valid", errors);
    return !errors;
  };
  const save = async () => {
    if (!(await validate())) return;
    say("saving…");
    const answer = await api("PUT", path, body());
    if (answer.status !== 200) {   // the API's errors, with their path and line when it gives them
      const listed = ((answer.json && answer.json._embedded) || {}).errors;
      show(Array.isArray(listed) && listed.length ? listed.map((e) => ({
        message: e.path ? `${e.path}: ${e.message}` : String(e.message), line: Number.isInteger(e.line) ? e.line : null }))
        : [{ message: answerText(answer), line: null }]);
      say("not saved", true);
      return;
    }
    saved(answer.json);
  };
  const confirmDelete = () => {
    box.querySelector(".kn-confirm").innerHTML = `<p class="kn-warning" role="alertdialog">Delete the flow <b>${esc(namespace)}.${esc(id)}</b>? ` +
      'Its executions and revisions are kept. <button type="button" class="kn-act" data-edit="confirm-delete">Delete it</button> ' +
      '<button type="button" class="kn-act" data-edit="read">Keep it</button> <span class="kn-edit-msg" role="status"></span></p>';
  };
  const remove = async () => {
    const answer = await api("DELETE", path);
    if (answer.status !== 204) { say(answerText(answer), true); return; }
    deleted();
  };
  box.addEventListener("click", (event) => {
    const go = event.target.closest("[data-goto]");
    if (go) {   // to the line of a problem
      const area = box.querySelector("textarea");
      const lines = area.value.split("\n");
      const at = lines.slice(0, Number(go.dataset.goto) - 1).reduce((n, line) => n + line.length + 1, 0);
      area.focus();
      area.setSelectionRange(at, at + (lines[Number(go.dataset.goto) - 1] || "").length);
      return;
    }
    const button = event.target.closest("[data-edit]");
    if (!button) return;
    const action = button.dataset.edit;
    const done = (promise) => promise.catch((error) => say(String(error), true));
    if (action === "edit") edit();
    else if (action === "cancel" || action === "read") read();
    else if (action === "validate") done(validate());
    else if (action === "save") done(save());
    else if (action === "delete") confirmDelete();
    else if (action === "confirm-delete") done(remove());
  });
  read();
  return { revisionsDiff: (el) => revisionsDiff(el, revisions) };
}

// Two revisions picked (the one before the latest and the latest at first), their line diff below.
function revisionsDiff(el, revisions) {
  if (revisions.length < 2) { el.innerHTML = ""; return; }
  const options = (chosen) => revisions.map((r) => `<option value="${esc(r.revision)}"${r.revision === chosen ? " selected" : ""}>` +
    `${esc(r.revision)}</option>`).join("");
  const last = revisions[revisions.length - 1].revision;
  const before = revisions[revisions.length - 2].revision;
  el.innerHTML = '<form class="kn-filterbar kn-diff-pick"><label>Compare revision <select name="from">' +
    `${options(before)}</select></label><label>with <select name="to">${options(last)}</select></label></form><div class="kn-diff-out"></div>`;
  const draw = () => {
    const data = new FormData(el.querySelector("form"));
    const pick = (name) => revisions.find((r) => String(r.revision) === data.get(name));
    const [a, b] = [pick("from"), pick("to")];
    const lines = (text) => (text || "").replace(/\n$/, "").split("\n");   // (a last newline ends a line, none follows)
    el.querySelector(".kn-diff-out").innerHTML = diffHtml(lineDiff(lines(a.source), lines(b.source)));
  };
  el.querySelector("form").addEventListener("change", draw);
  draw();
}
