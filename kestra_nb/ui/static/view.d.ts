// The types of view.js, for the JupyterLab extension (js/src/index.ts).
export interface ApiAnswer {
  status: number;
  json: any;
  text: string;
}
export interface ViewOptions {
  // the host's authenticated call of Kestra's API; `path` is relative to `…/api/v1/main/`
  api?: (method: string, path: string, body?: BodyInit) => Promise<ApiAnswer>;
  // on a /ui/ page: labels and delete actions, child executions linked
  pages?: { link: (row: { task: string; execution: string }) => string; deleted: (summary: unknown) => void };
}
export interface ViewHandle {
  update(state: Record<string, unknown>): void;
  dispose(): void;
}
export function mount(el: HTMLElement, options?: ViewOptions): ViewHandle;
