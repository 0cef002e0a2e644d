// JupyterLab and Notebook 7: the renderer of kestra_nb's execution mimetype. A `%%flow` cell displays the
// execution's view-model state under this mimetype and replaces it with `update_display_data` while the flow
// runs (no comm: nbclient and papermill keep the last state, and a saved notebook renders with no kernel).
// The drawing is the shared ES module kestra_nb/ui/static/view.js, the same one every host uses.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { ApiAnswer, mount, ViewHandle } from '../../kestra_nb/ui/static/view.js';

export const MIME_TYPE = 'application/vnd.kestra.execution+json';

// Kestra's API on this Jupyter server (the kestra_nb server extension), with the page's own auth: its
// token and XSRF cookie, as every JupyterLab request. So the view's actions work after a reload, with
// no kernel, from any notebook this server opens.
async function api(method: string, path: string, body?: BodyInit): Promise<ApiAnswer> {
  const settings = ServerConnection.makeSettings();
  const base = settings.baseUrl.endsWith('/') ? settings.baseUrl : settings.baseUrl + '/';
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = body;
  }
  const response = await ServerConnection.makeRequest(`${base}kestra/api/v1/main/${path}`, init, settings);
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: response.status, json, text };
}

class ExecutionOutput extends Widget implements IRenderMime.IRenderer {
  private view: ViewHandle;

  constructor() {
    super();
    this.addClass('kn-output');
    this.view = mount(this.node, { api });
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.view.update(model.data[MIME_TYPE] as Record<string, unknown>);
    return Promise.resolve();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.view.dispose();
    }
    super.dispose();
  }
}

const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true, // it escapes every value (a flow's outputs and logs are data, never markup)
  mimeTypes: [MIME_TYPE],
  defaultRank: 0, // before text/html (50): the twin is for where this extension is not
  createRenderer: () => new ExecutionOutput()
};

const extension: IRenderMime.IExtension = {
  id: 'kestra-nb:execution',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
