"""The `/ui/` routes: an execution's page, its view as JSON (what the page polls), and the static assets.

Served by `UiHandler` (the standalone server: its guard and Basic auth) and by the Jupyter extension's
subclass (Jupyter's authentication and XSRF); both answer through `UiPages`, which only reads through the
API's service. The page embeds the view's state as JSON in a `<script type="application/json">` with `<`
escaped, so no value can close it; everything a flow put in it is drawn as escaped text by view.js.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator
from contextlib import suppress
from urllib.parse import unquote
from pathlib import Path
from typing import Any

import tornado.web

from ..api.handlers import ApiHandler, on_engine_loop
from ..api.errors import ApiError
from ..engine.events import ExecutionUnstored, ExecutionUpdated
from ..errors import NotFoundError

STATIC = Path(__file__).with_name("static")
MAX_CHILDREN = 100   # child executions shown in an execution's page (the API has them all)
ASSETS = {"view.js": "text/javascript", "view.css": "text/css", "topology.js": "text/javascript",
          "topology.css": "text/css", "page.js": "text/javascript", "app.js": "text/javascript",
          "app.css": "text/css", "api.js": "text/javascript", "logs.js": "text/javascript",
          "diff.js": "text/javascript", "flowedit.js": "text/javascript"}
# scripts only from this server, styles from it plus the style attributes the view sets, no frames of it
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
PAGE = re.compile(r"/ui/(?P<tenant>[^/]+)/executions/(?P<namespace>[^/]+)/(?P<flow>[^/]+)/(?P<id>[^/]+)")
APP = re.compile(r"/ui/?|/ui/main/?(?:executions|flows|namespaces)?/?|/ui/main/(?:flows/[^/]+/[^/]+|namespaces/[^/]+"
                 r"|executions/[^/]+/[^/]+/[^/]+/logs)")   # the tenant served
GRAPH = re.compile(r"/ui/(?P<tenant>[^/]+)/flows/(?P<namespace>[^/]+)/(?P<flow>[^/]+)/graph")
VIEW = re.compile(r"/ui/(?P<tenant>[^/]+)/executions/(?P<id>[^/]+)/view")
CHANGES = re.compile(r"/ui/main/executions/changes")
CHANGES_POLL = 1.0   # seconds between two looks at the store for what other processes (kernels) wrote
CHANGES_GAP = 1.0    # seconds at least between two `changed` events: a busy engine costs a list one fetch a second
ASSET = re.compile(r"/ui/static/(?P<name>[\w.-]+)")


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `<` (so no `</script>`), no `&`, no line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class UiPages:
    """What the `/ui/` routes answer, for one server (its API service and the prefix it is mounted under)."""

    def __init__(self, service: Any, prefix: str = "") -> None:
        self.service = service
        self.prefix = prefix.rstrip("/")
        self._assets: dict[str, bytes] = {}
        self._graphs: dict[tuple[Any, ...], dict[str, Any] | None] = {}

    def asset(self, name: str) -> tuple[bytes, str]:
        if name not in ASSETS:
            raise ApiError("Not Found", status=404)
        if name not in self._assets:
            self._assets[name] = (STATIC / name).read_bytes()
        return self._assets[name], ASSETS[name]

    def view(self, execution_id: str, namespace: str | None = None, flow_id: str | None = None) -> dict[str, Any]:
        """The execution's view (the notebook output's data under its mimetype); NotFoundError if missing (or
        not of that flow, when one is named)."""
        from ..jupyter.display import MIME, execution_bundle, flow_graph

        store = self.service.store
        document = store.get_execution_document(execution_id)
        if document is None or (namespace is not None and (document.get("namespace"), document.get("flowId"))
                                != (namespace, flow_id)):
            raise NotFoundError(f"Execution '{execution_id}' not found.")
        key = (document.get("namespace"), document.get("flowId"), document.get("flowRevision"))
        if key not in self._graphs:   # a revision never changes: its topology is built once
            if len(self._graphs) >= 64:
                self._graphs.clear()
            self._graphs[key] = flow_graph(self.service.engine, document)
        graph = self._graphs[key]
        return execution_bundle(document, store.list_logs(execution_id), graph, self._children(document))[MIME]

    def _children(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        """The executions its Subflow tasks started (their task runs' `executionId` output), at any depth,
        at most MAX_CHILDREN of them."""
        store = self.service.store
        found: list[dict[str, Any]] = []
        pending = [document]
        seen = {document.get("id")}
        while pending and len(found) < MAX_CHILDREN:
            for tr in pending.pop().get("taskRunList") or ():
                child_id = (tr.get("outputs") or {}).get("executionId")
                if isinstance(child_id, str) and child_id not in seen and len(found) < MAX_CHILDREN:
                    seen.add(child_id)
                    child = store.get_execution_document(child_id)
                    if child is not None:
                        found.append(child)
                        pending.append(child)
        return found

    def page(self, execution_id: str, namespace: str | None = None, flow_id: str | None = None) -> str:
        """An execution's page: the view's state embedded, drawn and followed by page.js."""
        data = self.view(execution_id, namespace, flow_id)
        summary = data.get("summary") or {}
        title = f"{summary.get('namespace', '')}.{summary.get('flowId', '')} · {execution_id}"
        return self._html(title, "page.js", {"execution": execution_id}, data)

    def app(self, title: str = "Kestra") -> str:
        """The executions, flows and flow pages: app.js draws them from the API (the URL says which)."""
        from ..jupyter.widgets.viewmodel import STATE_COLORS

        return self._html(title, "app.js", {}, {"colors": STATE_COLORS})

    def _html(self, title: str, script: str, data: dict[str, str], state: Any) -> str:
        base = self.prefix
        attributes = "".join(f' data-{key}="{html.escape(value)}"' for key, value in data.items())
        return (
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)} · kestra_nb</title><link rel=\"icon\" href=\"data:,\">"
            f"<link rel=\"stylesheet\" href=\"{base}/ui/static/view.css\">"
            f"<link rel=\"stylesheet\" href=\"{base}/ui/static/topology.css\">"
            f"<link rel=\"stylesheet\" href=\"{base}/ui/static/app.css\"></head><body>"
            f"<main id=\"kn-page\" data-base=\"{html.escape(base)}\"{attributes}></main>"
            f"<script type=\"application/json\" id=\"kn-state\">{_script_json(state)}</script>"
            f"<script type=\"module\" src=\"{base}/ui/static/{script}\"></script></body></html>")

    async def changes(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Server-sent events for the executions lists: `start`, then `changed` when an execution may have
        changed (a transition this process committed, or a commit of another process sharing the store), at most
        one every CHANGES_GAP seconds. A list fetches its rows again on one, so it asks for nothing while nothing
        happens; the stream never ends by itself (its page closes it when hidden or left). Runs on the engine's loop."""
        engine, store = self.service.engine, self.service.store
        changed = asyncio.Event()   # (set by the listener, which runs on this loop's thread)

        def on_event(event: Any) -> None:
            if isinstance(event, (ExecutionUpdated, ExecutionUnstored)):   # (a log line alone changes no row)
                changed.set()

        unsubscribe = engine.subscribe(None, on_event)
        try:
            version = store.data_version()
            yield "start", {}
            while True:
                with suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), CHANGES_POLL)
                now = store.data_version()
                if changed.is_set() or now != version:
                    changed.clear()
                    version = now
                    yield "changed", {}
                    await asyncio.sleep(CHANGES_GAP)
        finally:
            unsubscribe()

    def flow_graph(self, namespace: str, flow_id: str, revision: int | None = None) -> dict[str, Any]:
        """A flow's topology and its triggers (a Schedule's next date): what the flow page draws beside the API's
        flow document. NotFoundError for an unknown flow."""
        from ..engine.scheduler import java_iso, schedule_cron
        from ..jupyter.topology import topology
        from ..model.state import utcnow

        flow, revision = self.service.engine.load_flow(namespace, flow_id, revision)
        triggers = []
        for spec in flow.triggers:
            item: dict[str, Any] = {"id": spec.get("id"), "type": spec.get("type"),
                                    "disabled": bool(spec.get("disabled"))}
            if str(spec.get("type", "")).endswith(".Schedule") and spec.get("cron"):
                try:
                    item["next"] = java_iso(schedule_cron(spec).after(utcnow()))
                except (ValueError, KeyError):
                    item["next"] = None
            triggers.append(item)
        return {"revision": revision, "graph": topology(flow), "triggers": triggers}


class UiHandler(ApiHandler):
    """The `/ui/` routes on the standalone server: its guard (Host, Origin) and its Basic auth, read-only."""

    def initialize(self, api: Any, prefix: str = "", pages: UiPages | None = None) -> None:  # type: ignore[override]
        super().initialize(api, prefix)
        self.pages = pages or UiPages(api.service, prefix)

    async def _dispatch(self) -> None:
        if self._refused is not None:
            self._error(self._refused)
            return
        if self.request.method not in ("GET", "HEAD"):
            self._error(ApiError("Method Not Allowed", status=405))
            return
        if not self.is_authorized():
            self._unauthorized()
            return
        path = self.request.path[len(self.prefix):]
        try:
            if match := ASSET.fullmatch(path):
                body, media = self.pages.asset(match["name"])
                self.set_header("Content-Type", f"{media}; charset=UTF-8")
                self.set_header("Cache-Control", "no-cache")
            elif CHANGES.fullmatch(path):
                events = await on_engine_loop(self.api.service.engine, self.pages.changes)
                await self._stream(self.api.service.engine.iterate_on_loop(events))
                return
            elif match := VIEW.fullmatch(path):
                data = await on_engine_loop(self.api.service.engine, lambda: self.pages.view(match["id"]))
                body = json.dumps(data, ensure_ascii=False).encode()
                self.set_header("Content-Type", "application/json")
                self.set_header("Cache-Control", "no-store")
            elif match := GRAPH.fullmatch(path):
                data = await on_engine_loop(self.api.service.engine, lambda: self.pages.flow_graph(
                    unquote(match["namespace"]), unquote(match["flow"])))
                body = json.dumps(data, ensure_ascii=False).encode()
                self.set_header("Content-Type", "application/json")
                self.set_header("Cache-Control", "no-store")
            elif APP.fullmatch(path):
                body = self.pages.app().encode()
                if self.settings.get("xsrf_cookies"):
                    self.xsrf_token   # noqa: B018 - the `_xsrf` cookie the app's requests send back (Jupyter)
                self.set_header("Content-Type", "text/html; charset=UTF-8")
                self.set_header("Content-Security-Policy", CSP)
                self.set_header("Cache-Control", "no-store")
            elif match := PAGE.fullmatch(path):
                text = await on_engine_loop(self.api.service.engine, lambda: self.pages.page(
                    match["id"], unquote(match["namespace"]), unquote(match["flow"])))
                body = text.encode()
                if self.settings.get("xsrf_cookies"):
                    self.xsrf_token   # noqa: B018 - sets the `_xsrf` cookie the page's actions send back (Jupyter)
                self.set_header("Content-Type", "text/html; charset=UTF-8")
                self.set_header("Content-Security-Policy", CSP)
                self.set_header("Cache-Control", "no-store")
            else:
                raise ApiError("Not Found", status=404)
        except Exception as exc:  # noqa: BLE001 - an error page is a JsonError, never a traceback
            self._error(exc)
            return
        self.set_header("X-Content-Type-Options", "nosniff")
        self._finish(None if self.request.method == "HEAD" else body)


def ui_handlers(api: Any, prefix: str = "", handler: type[UiHandler] = UiHandler
                ) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """The tornado URL spec that mounts `/ui/` under `prefix`."""
    base = prefix.rstrip("/")
    return [(base + r"/ui/.*", handler, {"api": api, "prefix": base, "pages": UiPages(api.service, base)})]


__all__ = ["ASSETS", "CSP", "UiHandler", "UiPages", "ui_handlers"]
