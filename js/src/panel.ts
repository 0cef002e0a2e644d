// The "Kestra" panel in JupyterLab's left area, and a "Kestra" tab of Notebook 7's tree page (beside Files and
// Running, through @jupyter-notebook/tree's INotebookTree, which only Notebook 7 provides): the /ui/ pages of this Jupyter server (kestra_nb's server
// extension, under {base_url}kestra/ui/) in a frame of the same origin, so they use the page's own login and
// XSRF cookie. The same pages are what `kestra-nb server` serves at /ui/. A flow page's "Open in a notebook"
// asks this panel (a message from that frame only) to create a notebook holding the flow in a `%%flow` cell
// and open it.
import { INotebookTree } from '@jupyter-notebook/tree';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

interface OpenNotebook {
  type: 'kestra-nb:open-notebook';
  namespace: string;
  id: string;
  source: string;
}

function notebook(source: string): Record<string, unknown> {
  const cell = (text: string) => ({ cell_type: 'code', metadata: {}, source: text, outputs: [], execution_count: null });
  return {
    cells: [cell('%load_ext kestra_nb'), cell('%%flow --out ex\n' + source.replace(/\n+$/, ''))],
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    nbformat: 4,
    nbformat_minor: 5
  };
}

async function createNotebook(message: OpenNotebook): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const base = settings.baseUrl.endsWith('/') ? settings.baseUrl : settings.baseUrl + '/';
  const safe = `${message.namespace}.${message.id}`.replace(/[^\w.-]+/g, '_');
  for (let n = 0; n < 100; n++) {
    const path = `${safe}${n ? `-${n}` : ''}.ipynb`;
    const url = `${base}api/contents/${encodeURIComponent(path)}`;
    const exists = await ServerConnection.makeRequest(url + '?content=0', { method: 'GET' }, settings);
    if (exists.status === 200) {
      continue;
    }
    const body = JSON.stringify({ type: 'notebook', format: 'json', content: notebook(message.source) });
    const made = await ServerConnection.makeRequest(url, { method: 'PUT', body }, settings);
    if (made.status >= 400) {
      throw new Error(`cannot create ${path}: HTTP ${made.status}`);
    }
    return path;
  }
  throw new Error('cannot find a free notebook name');
}

class KestraPanel extends Widget {
  readonly frame: HTMLIFrameElement;

  constructor() {
    super();
    this.id = 'kestra-nb-panel';
    this.title.label = 'Kestra';
    this.title.caption = 'Kestra: flows and executions';
    this.addClass('kn-panel');
    const settings = ServerConnection.makeSettings();
    const base = settings.baseUrl.endsWith('/') ? settings.baseUrl : settings.baseUrl + '/';
    this.frame = document.createElement('iframe');
    this.frame.src = `${base}kestra/ui/main/executions`;
    this.frame.title = 'Kestra';
    this.frame.style.cssText = 'border:0;width:100%;height:100%;display:block';
    this.node.style.cssText = 'min-width:360px;height:100%;overflow:hidden';
    this.node.appendChild(this.frame);
  }

  // a collapsed panel (or another tab of Notebook's tree) is not looked at: its pages close their event streams
  // (a frame's document stays "visible" otherwise)
  tellVisible(visible: boolean): void {
    this.frame.contentWindow?.postMessage({ type: 'kestra-nb:visible', visible }, window.location.origin);
  }

  protected onAfterShow(): void {
    this.tellVisible(true);
  }

  protected onAfterHide(): void {
    this.tellVisible(false);
  }
}

interface App {
  shell: { add(widget: Widget, area: string, options?: { rank?: number }): void };
  commands: { execute(id: string, args?: Record<string, unknown>): Promise<unknown> };
}

const plugin = {
  id: 'kestra-nb:panel',
  description: 'The Kestra panel: flows and executions, from the Jupyter server\'s Kestra API',
  autoStart: true,
  optional: [INotebookTree],
  activate: (app: App, tree: INotebookTree | null): void => {
    const panel = new KestraPanel();
    if (tree) {
      tree.addWidget(panel); // Notebook 7's tree page: a tab (its first one, Files, stays the current one)
    } else {
      app.shell.add(panel, 'left', { rank: 900 });
    }
    // the pages follow JupyterLab's theme: told on load and on every change of it
    const tellTheme = () => {
      const light = document.body.dataset.jpThemeLight !== 'false';
      panel.frame.contentWindow?.postMessage({ type: 'kestra-nb:theme', light }, window.location.origin);
    };
    panel.frame.addEventListener('load', () => {
      tellTheme();
      panel.tellVisible(panel.isVisible);
    });
    new MutationObserver(tellTheme).observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-light'] });
    window.addEventListener('message', (event: MessageEvent) => {
      const data = event.data as OpenNotebook;
      if (event.source !== panel.frame.contentWindow || event.origin !== window.location.origin) {
        return; // only the panel's own pages may ask
      }
      if (!data || data.type !== 'kestra-nb:open-notebook' || typeof data.source !== 'string') {
        return;
      }
      createNotebook(data)
        .then(path => app.commands.execute('docmanager:open', { path }))
        .catch(error => console.error('kestra_nb:', error));
    });
  }
};

export default plugin;
