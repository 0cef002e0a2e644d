"""The Jupyter Server extension: Kestra's REST API (`api.routes`) under `{base_url}kestra/`, behind Jupyter's auth.

Enabled on `pip install` by `jupyter-config/jupyter_server_config.d/kestra_nb.json` (shared data), or with
`jupyter server extension enable kestra_nb`. Then, with the server's token:

    curl -X POST -H "Authorization: token $TOKEN" \
      "http://127.0.0.1:8888/kestra/api/v1/executions/company.team/myflow?wait=true"

Every route is guarded by Jupyter itself: `@tornado.web.authenticated` then `@authorized` with
`auth_resource = "kestra"` (token or Bearer header, or the login cookie plus XSRF from a browser; 403
otherwise), so it also passes with `ServerApp.allow_unauthenticated_access=False`. The one exception is the
webhook routes (`…/executions/webhook/{namespace}/{flowId}/{key}`): open, as in Kestra, since the systems
calling a webhook hold no Jupyter token; the trigger's key is the secret (`KestraWebhookHandler`). The
trigger scheduler runs here too (`scheduler_enabled`), firing Schedule and Flow triggers when this process
holds `<home>/scheduler.lock`.
The engine runs on its own loop thread (Jupyter's loop only answers HTTP) and shares the SQLite store of KESTRA_NB_HOME with the kernels, so a flow saved
by a `%%flow` cell can be run through the API. On shutdown running executions get `shutdown_grace`
seconds to end or pause; what still runs then stays as last committed, for recovery by the next engine.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlencode

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web
from traitlets import Bool, Float, Unicode

from ..api.handlers import Api, ApiHandler
from ..api.service import ApiService
from ..api.guard import Guard
from ..api.webhook import WebhookHandler, Webhooks, webhook_handlers
from ..model.state import StateType
from ..server import prefer_short_switches
from ..ui.pages import UiHandler, UiPages

AUTH_RESOURCE = "kestra"
MOUNT = "kestra"


class KestraHandler(ExtensionHandlerMixin, APIHandler, ApiHandler):
    """The route table's handler, with Jupyter's authentication, authorization, XSRF and origin checks."""

    auth_resource = AUTH_RESOURCE
    SUPPORTED_METHODS = ApiHandler.SUPPORTED_METHODS
    _body_allowed = False

    async def prepare(self) -> None:  # type: ignore[override]
        """Jupyter's checks (host, identity, XSRF, origin); then, for a user allowed to use the API only, the
        body is taken in (a multipart upload streams to temporary files): a refused request is answered
        403 before its body is read, as the handler decorators would answer it after."""
        self._body_allowed = False
        await super().prepare()   # Jupyter's prepare ends (through the MRO) in ApiHandler.prepare: a no-op here
        if self._finished or self.request.method == "OPTIONS":   # (a CORS preflight: Jupyter answers it)
            return
        user = self.current_user
        if not user:
            raise web.HTTPError(403)
        action = HTTP_METHOD_TO_AUTH_ACTION.get((self.request.method or "GET").upper(), "write")
        if not await ensure_async(self.authorizer.is_authorized(self, user, action, AUTH_RESOURCE)):
            raise web.HTTPError(403, f"User is not authorized to {action} on resource: {AUTH_RESOURCE}.")
        self._body_allowed = True
        self._open_body()

    def _open_body(self) -> None:
        if self._body_allowed:
            super()._open_body()

    def is_authorized(self) -> bool:
        """Jupyter has authenticated and authorized the request (in `prepare`, and the method decorators)."""
        return True

    def check_xsrf_cookie(self) -> None:
        """Jupyter's rule: token requests are exempt, cookie requests must carry the XSRF token.

        JupyterHandler's version ends in `super().check_xsrf_cookie()`, which in this class's MRO is
        ApiHandler's no-op (the standalone server's Basic-auth exemption), so tornado's check is called here.
        """
        if not hasattr(self, "_jupyter_current_user"):
            return  # tornado calls this before prepare(); prepare() calls it again once the user is known
        if self.token_authenticated or self.settings.get("disable_check_xsrf", False):
            return
        if not self.check_origin():
            raise web.HTTPError(404)
        web.RequestHandler.check_xsrf_cookie(self)

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        """Keep the content type the route chose (APIHandler would force application/json)."""
        kwargs.setdefault("set_content_type", self._headers.get("Content-Type", "application/json"))
        return super().finish(*args, **kwargs)

    @web.authenticated
    @authorized
    async def get(self, *args: str) -> None:
        await self._dispatch()

    @web.authenticated
    @authorized
    async def head(self, *args: str) -> None:
        await self._dispatch()

    @web.authenticated
    @authorized
    async def post(self, *args: str) -> None:
        await self._dispatch()

    @web.authenticated
    @authorized
    async def put(self, *args: str) -> None:
        await self._dispatch()

    @web.authenticated
    @authorized
    async def delete(self, *args: str) -> None:
        await self._dispatch()

    @web.authenticated
    @authorized
    async def patch(self, *args: str) -> None:
        await self._dispatch()


class KestraUiHandler(KestraHandler, UiHandler):
    """The `/ui/` pages (an execution's view, where its JSON's `url` points) behind Jupyter's login: a browser
    without one is sent to it; the page's actions carry Jupyter's XSRF cookie."""

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await super().prepare()
        except web.HTTPError as exc:
            # a page asked for without a login: Jupyter's login page, which comes back here (APIHandler says 403)
            if exc.status_code == 403 and self.request.method == "GET" and not self.current_user:
                login = JupyterHandler.get_login_url(self)
                self.redirect(f"{login}?{urlencode({'next': self.request.uri})}")
                return
            raise


class KestraWebhookHandler(WebhookHandler):
    """The webhook routes, open without a Jupyter token or login (the trigger's key is the secret), as in
    Kestra, where webhooks are `open-urls`: external systems cannot hold a Jupyter token. Marked
    `@allow_unauthenticated`, so they also stay open with `ServerApp.allow_unauthenticated_access=False`;
    every other route of the extension keeps Jupyter's authentication."""

    @allow_unauthenticated
    async def get(self, *args: str) -> None:
        await self._serve(args)

    @allow_unauthenticated
    async def post(self, *args: str) -> None:
        await self._serve(args)

    @allow_unauthenticated
    async def put(self, *args: str) -> None:
        await self._serve(args)


class KestraApp(ExtensionApp):
    """The `kestra_nb` server extension: its settings are traitlets (`c.KestraApp.home = ...`)."""

    name = "kestra_nb"
    load_other_extensions = True

    home = Unicode("", config=True, help=(
        "The kestra_nb home (SQLite store and internal storage). Empty: $KESTRA_NB_HOME, else "
        "<jupyter data dir>/kestra_nb. When set, kernels started by this server get it as KESTRA_NB_HOME, "
        "so `%%flow` cells and the API share one store."))
    shutdown_grace = Float(5.0, config=True, help=(
        "Seconds running executions get to end or pause when the server stops."))
    scheduler_enabled = Bool(True, config=True, help=(
        "Run the trigger scheduler (Schedule and Flow triggers) in this server; one process per home fires."))

    engine: Any = None
    service: ApiService | None = None
    api: Api | None = None
    scheduler: Any = None

    def initialize_settings(self) -> None:
        """Open the store and build the engine on the server's loop (it starts running with the server)."""
        from ..engine import Engine

        if self.home:
            os.environ["KESTRA_NB_HOME"] = self.home  # inherited by the kernels this server starts
        # kernels started here link output files to this server's download route (widgets' static HTML)
        os.environ["KESTRA_NB_BASE_URL"] = self.serverapp.base_url
        # The engine runs on its own loop thread, Jupyter's loop answers HTTP: no render, step or store call
        # of an execution holds up the notebook server (see api.handlers.on_engine_loop).
        self.engine = Engine(self.home or None, recover=False)
        prefer_short_switches()
        # an execution's `url` is its page here: {base_url}kestra/ui/main/executions/…
        self.service = ApiService(self.engine, base_url=url_path_join(self.serverapp.base_url, MOUNT))
        self.service.security = "jupyter"   # Jupyter's token or login (the OpenAPI document says so)
        self.api = Api(self.service)
        engine_loop = self.engine.loop
        # once the server listens (its loop runs): executions left by a dead process, in the background
        self.serverapp.io_loop.asyncio_loop.call_soon(engine_loop.call_soon_threadsafe, self.engine.recover)
        if self.scheduler_enabled:
            from ..engine.scheduler import Scheduler

            self.scheduler = Scheduler(self.engine)
            engine_loop.call_soon_threadsafe(self.scheduler.start)
        self.log.info("kestra_nb: Kestra API at %s (store %s)", url_path_join(self.serverapp.base_url, MOUNT),
                      getattr(self.engine.store, "path", "memory"))

    def initialize_handlers(self) -> None:
        """Mount the whole route table under `{base_url}kestra/` (ExtensionApp prepends base_url)."""
        options = {"api": self.api, "prefix": url_path_join(self.serverapp.base_url, MOUNT)}
        assert self.service is not None
        # the open webhook routes first: tornado takes the first pattern that matches
        # Jupyter's own handlers check Host and Origin; the webhook routes are not Jupyter's, so they get the
        # same rules from its settings (api.guard)
        app = self.serverapp
        guard = Guard.for_jupyter({"allow_remote_access": app.allow_remote_access,
                                   "local_hostnames": app.local_hostnames, "allow_origin": app.allow_origin,
                                   "allow_origin_pat": app.allow_origin_pat})
        self.handlers.extend(webhook_handlers(Webhooks(self.service), f"/{MOUNT}", KestraWebhookHandler, guard))
        self.handlers.extend([(rf"/{MOUNT}/ui/.*", KestraUiHandler,
                               {**options, "pages": UiPages(self.service, options["prefix"])}),
                              (rf"/{MOUNT}/ping", KestraHandler, options),
                              (rf"/{MOUNT}/api/v1/.*", KestraHandler, options)])

    async def stop_extension(self) -> None:
        """Let running executions end or pause (bounded), stop what still runs, close the store."""
        service, engine = self.service, self.engine
        if engine is None:
            return
        if self.scheduler is not None:
            await engine.on_loop(self.scheduler.stop)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace
        while service is not None and loop.time() < deadline and any(
                state is not StateType.PAUSED for state in tuple(service.active.values())):
            await asyncio.sleep(0.05)
        if service is not None:
            await engine.on_loop(service.close)
        engine.close()   # stops its drivers (what they drive stays as last committed) and its thread
        self.engine = None


__all__ = ["AUTH_RESOURCE", "KestraApp", "KestraHandler", "KestraUiHandler", "KestraWebhookHandler"]
