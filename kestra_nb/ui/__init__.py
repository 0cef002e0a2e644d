"""The pages under `/ui/` (the standalone server at its root, Jupyter under `{base_url}kestra/`) and the static
assets they share with the JupyterLab extension (`ui/static/`: the execution view's ES module and style).

`/ui/{tenant}/executions/{namespace}/{flowId}/{id}` is where an execution JSON's `url` points: the execution's
view, drawn by the same module as a notebook's output, following the execution while it runs, with its
actions through the REST API (the server's own auth: Basic auth or Jupyter's login, and XSRF).
"""
from .pages import ASSETS, UiPages, ui_handlers

__all__ = ["ASSETS", "UiPages", "ui_handlers"]
