// A flow's topology (kestra_nb/jupyter/topology.py `topology`) as HTML: the same boxes, in the same order,
// as the static twin `topology_html`. Each task is a box (id, short type, state, a bar of the state's
// colour); a sequence runs left to right with arrows, side-by-side tasks are stacked, branches labelled, a
// Dag's columns follow its dependencies. Plain ES module, no imports; every text is escaped.

const UNKNOWN = "#918BA9";

// every text a view draws goes through this (view.js and app.js use it too); null and undefined draw nothing
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}[c]));
}

function color(colors, state) {
  const value = String(colors[state] || UNKNOWN);
  return /^#[0-9A-Fa-f]{3,8}$/.test(value) ? value : UNKNOWN;
}

function more(count) {
  return count ? `<span class="kn-topo-more">+${Number(count) | 0} more</span>` : "";
}

// A cell keeps its arrow with it when the row wraps.
function row(cells) {
  return `<div class="kn-topo-row">${cells.map((cell, i) => `<div class="kn-topo-cell">` +
    (i ? '<span class="kn-topo-arrow" aria-hidden="true">&#x2192;</span>' : "") + `${cell}</div>`).join("")}</div>`;
}

function stack(cells) {
  return `<div class="kn-topo-stack">${cells.join("")}</div>`;
}

function box(node, states, colors, after) {
  const state = Object.prototype.hasOwnProperty.call(states, node.id) ? states[node.id] : undefined;
  const stateText = state === undefined || state === null ? "" : ` <b class="kn-topo-state">${esc(state)}</b>`;
  const off = node.off ? ' <i class="kn-topo-off">disabled</i>' : "";
  const deps = after && after.length ? ` <i class="kn-topo-after">after ${esc(after.join(", "))}</i>` : "";
  const bar = stateText ? ` data-state="${esc(state)}" style="border-left-color:${color(colors, state)}"` : "";
  return `<div class="kn-topo-box" data-task="${esc(node.id)}"${bar}>` +
    `<div class="kn-topo-head"><code class="kn-topo-id">${esc(node.id)}</code> ` +
    `<span class="kn-topo-type">${esc(node.t || "")}</span>${stateText}${off}${deps}</div>${groups(node, states, colors)}${more(node.more)}</div>`;
}

function tasks(group, states, colors) {
  const list = group.tasks || [];
  const rest = more(group.more);
  if (group.k === "par") return stack(list.map((t) => box(t, states, colors)).concat(rest ? [rest] : []));
  if (group.k === "dag") {
    const after = {};
    for (const [dep, task] of group.edges || []) (after[task] = after[task] || []).push(dep);
    const columns = [];
    let i = 0;
    for (const n of group.cols || [list.length]) {
      columns.push(stack(list.slice(i, i + n).map((t) => box(t, states, colors, after[t.id]))));
      i += n;
    }
    return row(rest ? columns.concat([rest]) : columns);
  }
  return row(list.map((t) => box(t, states, colors)).concat(rest ? [rest] : []));
}

function groups(node, states, colors) {
  const list = node.c || [];
  if (!list.length) return "";
  return `<div class="kn-topo-groups">${list.map((g) =>
    `<div class="kn-topo-group" data-kind="${esc(g.k)}">` +
    (g.n === "tasks" ? "" : `<div class="kn-topo-label">${esc(g.n)}</div>`) +
    `${tasks(g, states, colors)}</div>`).join("")}</div>`;
}

/** The tree's drawing: `states` maps a task id to its latest task run's state, `colors` a state to a colour. */
export function topology(tree, states, colors) {
  states = states || {};
  colors = colors || {};
  return `<div class="kn-topo"><div class="kn-topo-title">${esc(tree.ns || "")}.${esc(tree.id || "")}</div>` +
    `${groups(tree, states, colors)}${more(tree.more)}</div>`;
}
