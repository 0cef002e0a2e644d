// An execution's page under /ui/ (where an execution JSON's `url` points): the same view as a notebook's
// output (view.js), drawn from the state the server embedded, then followed while the execution runs by
// polling its view (…/ui/main/executions/{id}/view, a second apart, stopped once it has ended or the tab is
// hidden). Actions call the REST API with the page's own auth (api.js).
import { client, followTheme, unseen } from "./api.js";
import { mount } from "./view.js";

const page = document.getElementById("kn-page");
const base = page.dataset.base || "";
const executionId = page.dataset.execution;
const ENDED = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"]);
const { call, api } = client(base);
followTheme();
page.insertAdjacentHTML("afterbegin", `<nav class="kn-nav"><b>Kestra</b><a href="${base}/ui/main/executions">Executions</a>` +
  `<a href="${base}/ui/main/flows">Flows</a><a href="${base}/ui/main/namespaces">Namespaces</a>` +
  `<a class="kn-logs-link" href="${window.location.pathname.replace(/\/+$/, "")}/logs">Logs of this execution</a></nav>` +
  '<div class="kn-execution"></div>');
// on a page: labels and delete too, and a subflow's child execution is a link to its own page
const pages = {
  link: (row) => {
    const dot = row.task.lastIndexOf(".");
    const [namespace, flowId] = [row.task.slice(0, dot), row.task.slice(dot + 1)];
    return `${base}/ui/main/executions/${encodeURIComponent(namespace)}/${encodeURIComponent(flowId)}/${encodeURIComponent(row.execution)}`;
  },
  deleted: () => { window.location.assign(`${base}/ui/main/executions`); },
};
const view = mount(page.querySelector(".kn-execution"), { api, pages });
let data = JSON.parse(document.getElementById("kn-state").textContent);
view.update(data);

async function follow() {
  while (!ENDED.has((data.summary || {}).state) || (data.summary || {}).end === null) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (unseen()) continue;
    const answer = await call("GET", `${base}/ui/main/executions/${encodeURIComponent(executionId)}/view`);
    if (answer.status !== 200 || !answer.json) return;
    data = answer.json;
    view.update(data);
  }
}

follow();
