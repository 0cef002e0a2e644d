// A line diff for two revisions of a flow: Myers' O((N+M)·D) greedy algorithm on the lines left once the common
// head and tail are set aside, with a budget. It gives up (answers null) past MAX_LINES lines a side or past
// MAX_WORK steps, so a hostile or huge pair of sources never holds up the page; `diffHtml` shows the changes
// with a few lines of context around each, every line escaped.
import { esc } from "./topology.js";

export const MAX_LINES = 20000;    // lines a side
export const MAX_WORK = 2000000;   // diagonal steps and snake moves, all d together (≈ 2,000 edits at most)

// The edit script from `a` to `b` (arrays of lines): [{op: " " | "-" | "+", text, a, b}] with `a`/`b` the
// 1-based line numbers in each side (null where the line is not on that side); null past the budget.
export function lineDiff(a, b, budget = {}) {
  const maxLines = budget.maxLines ?? MAX_LINES;
  const maxWork = budget.maxWork ?? MAX_WORK;
  if (a.length > maxLines || b.length > maxLines) return null;
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x0 = a.slice(head, a.length - tail);
  const y0 = b.slice(head, b.length - tail);
  const middle = myers(x0, y0, maxWork);
  if (middle === null) return null;
  const out = [];
  for (let i = 0; i < head; i++) out.push({ op: " ", text: a[i], a: i + 1, b: i + 1 });
  for (const step of middle) {
    out.push({ op: step.op, text: step.op === "+" ? y0[step.y] : x0[step.x],
      a: step.op === "+" ? null : head + step.x + 1, b: step.op === "-" ? null : head + step.y + 1 });
  }
  for (let i = tail; i > 0; i--) {
    out.push({ op: " ", text: a[a.length - i], a: a.length - i + 1, b: b.length - i + 1 });
  }
  return out;
}

// Myers: for each d, the furthest x reached on every diagonal k = x - y, kept (one array a d) to walk back.
function myers(x, y, maxWork) {
  const n = x.length;
  const m = y.length;
  if (!n) return y.map((_, j) => ({ op: "+", y: j }));
  if (!m) return x.map((_, i) => ({ op: "-", x: i }));
  const max = n + m;
  const offset = max + 1;
  let v = new Int32Array(2 * max + 3);
  const trace = [];
  let work = 0;
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));   // the diagonals d may read: -d-1 .. d+1
    for (let k = -d; k <= d; k += 2) {
      let px = (k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1])) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let py = px - k;
      while (px < n && py < m && x[px] === y[py]) { px++; py++; work++; }
      v[offset + k] = px;
      work++;
      if (work > maxWork) return null;
      if (px >= n && py >= m) return backtrack(trace, d, n, m);
    }
  }
  return null;   // (not reached: d = n + m always ends)
}

function backtrack(trace, last, n, m) {
  const steps = [];
  let px = n;
  let py = m;
  for (let d = last; d > 0; d--) {
    const saved = trace[d];   // v as it was before step d: index k + d + 1
    const at = (k) => saved[k + d + 1];
    const k = px - py;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (px > prevX && py > prevY) { px--; py--; steps.push({ op: " ", x: px, y: py }); }
    if (down) { py--; steps.push({ op: "+", y: py }); } else { px--; steps.push({ op: "-", x: px }); }
  }
  while (px > 0 && py > 0) { px--; py--; steps.push({ op: " ", x: px, y: py }); }
  return steps.reverse();
}

// The changes as HTML: each changed run with `context` unchanged lines around it, "…" between the hunks.
export function diffHtml(script, context = 3) {
  if (script === null) return '<p class="kn-error" role="alert">These revisions are too large or too different to compare here.</p>';
  const keep = new Uint8Array(script.length);
  script.forEach((line, i) => {
    if (line.op === " ") return;
    for (let j = Math.max(0, i - context); j <= Math.min(script.length - 1, i + context); j++) keep[j] = 1;
  });
  if (!keep.some((k) => k)) return '<p class="kn-muted">No difference</p>';
  const rows = [];
  let gap = false;
  script.forEach((line, i) => {
    if (!keep[i]) { gap = true; return; }
    if (gap && rows.length) rows.push('<tr class="kn-diff-gap"><td></td><td></td><td>…</td></tr>');
    gap = false;
    const kind = line.op === "+" ? "add" : line.op === "-" ? "del" : "same";
    rows.push(`<tr class="kn-diff-${kind}" data-op="${kind}"><td class="kn-muted">${line.a ?? ""}</td>` +
      `<td class="kn-muted">${line.b ?? ""}</td><td><code>${line.op} ${esc(line.text)}</code></td></tr>`);
  });
  return `<table class="kn-diff">${rows.join("")}</table>`;
}
