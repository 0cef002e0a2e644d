"""The Jupyter Server extension: Kestra's REST API (`api.routes`) under `{base_url}kestra/`, behind Jupyter's auth.

Enabled on `pip install` by `jupyter-config/jupyter_server_config.d/kestra_nb.json` (shared data), or with
`jupyter server extension enable kestra_nb`. Then, with the server's token:

    curl -X POST -H "Authorization: token $TOKEN" \
      "http://127.0.0.1:8888/kestra/api/v1/executions/company.team/myflow?wait=true"

Every route is guarded by Jupyter itself: `@tornado.web.authenticated` then `@authorized` with
`auth_resource = "kestra"` (token or Bearer header, or the login cookie plus XSRF from a browser; 403
otherwise), so it also passes with `ServerApp.allow_unauthenticated_access=False`. The engine runs on the
server's own asyncio loop and shares the SQLite store of KESTRA_NB_HOME with the kernels, so a flow saved
by a `%%flow` cell can be run through the API. On shutdown running executions get `shutdown_grace`
seconds to end or pause; what still runs then stays as last committed, for recovery by the next engine.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Float, Unicode

from ..api.handlers import Api, ApiHandler
from ..api.service import ApiService
from ..model.state import StateType

AUTH_RESOURCE = "kestra"
MOUNT = "kestra"


class KestraHandler(ExtensionHandlerMixin, APIHandler, ApiHandler):
    """The route table's handler, with Jupyter's authentication, authorization, XSRF and origin checks."""

    auth_resource = AUTH_RESOURCE
    SUPPORTED_METHODS = ApiHandler.SUPPORTED_METHODS

    def is_authorized(self) -> bool:
        """Jupyter's decorators have already authenticated and authorized the request."""
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

    engine: Any = None
    service: ApiService | None = None
    api: Api | None = None

    def initialize_settings(self) -> None:
        """Open the store and build the engine on the server's loop (it starts running with the server)."""
        from ..engine import Engine

        if self.home:
            os.environ["KESTRA_NB_HOME"] = self.home  # inherited by the kernels this server starts
        self.engine = Engine(self.home or None, loop=self.serverapp.io_loop.asyncio_loop)
        self.service = ApiService(self.engine)
        self.api = Api(self.service)
        self.log.info("kestra_nb: Kestra API at %s (store %s)", url_path_join(self.serverapp.base_url, MOUNT),
                      getattr(self.engine.store, "path", "memory"))

    def initialize_handlers(self) -> None:
        """Mount the whole route table under `{base_url}kestra/` (ExtensionApp prepends base_url)."""
        options = {"api": self.api, "prefix": url_path_join(self.serverapp.base_url, MOUNT)}
        self.handlers.extend([(rf"/{MOUNT}/ping", KestraHandler, options),
                              (rf"/{MOUNT}/api/v1/.*", KestraHandler, options)])

    async def stop_extension(self) -> None:
        """Let running executions end or pause (bounded), stop what still runs, close the store."""
        service, engine = self.service, self.engine
        if engine is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace
        while service is not None and loop.time() < deadline and any(
                state is not StateType.PAUSED for state in service.active.values()):
            await asyncio.sleep(0.05)
        # the engine has no public stop for a loop it does not own: cancel its drivers, as Server.shutdown does
        drivers = [d.task for d in getattr(engine, "_driven", {}).values() if getattr(d, "task", None) is not None]
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)
        if service is not None:
            service.close()
        engine.close()
        self.engine = None


__all__ = ["AUTH_RESOURCE", "KestraApp", "KestraHandler"]
