"""The standalone server: `kestra-nb server [--host 127.0.0.1] [--port 8080] [--home DIR] [--basic-auth U:P]`.

A tornado application mounting `api.routes` at `/`; the engine runs on its own loop thread, so nothing an
execution computes holds up the HTTP loop, and it recovers executions only once the server listens. On loopback
it needs no credentials by default (so the seed's `curl` works as written); with `--basic-auth` or
`KESTRA_NB_BASIC_AUTH` (or a bearer token: `--token`, `KESTRA_NB_API_TOKEN`; see api.auth) every route but
`/ping` and the webhook routes (open, as Kestra's open-urls: the trigger's key is the secret; see api.webhook)
requires those credentials; a non-loopback address is refused without any. The trigger scheduler (engine.scheduler) runs in the server: it fires Schedule and Flow
triggers when this process holds `<home>/scheduler.lock`. On SIGTERM (or SIGINT) it stops taking requests, lets running executions reach a stored
checkpoint (every transition is committed; it waits up to `grace` seconds for them to end or pause, then
stops them as last committed, for recovery on the next start) and exits 0.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from .api.auth import BasicAuth, Credentials, is_loopback
from .api.guard import Guard
from .api.handlers import Api, NotFoundHandler, api_handlers
from .api.service import ApiService
from .api.webhook import Webhooks, webhook_handlers
from .ui.pages import ui_handlers
from .errors import KestraNbError
from .model.state import StateType

log = logging.getLogger(__name__)
access_log = logging.getLogger("tornado.access")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
GRACE = 10.0   # seconds running executions get to end or pause on shutdown
GC_THRESHOLD = 20_000  # young-generation allocations between collections (CPython's default is 700)


SWITCH_INTERVAL = 0.001  # seconds a thread holding the GIL runs before another may take it (CPython: 0.005)


def prefer_short_switches() -> None:
    """Let the thread answering HTTP take the GIL within a millisecond while the engine's thread computes.

    Every socket call gives the GIL up and takes it back; under CPython's 5 ms switch interval a request
    needing a few of them behind a busy engine thread waits tens of milliseconds."""
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


class InsecureBindError(KestraNbError):
    """A non-loopback address was asked for without credentials."""


def make_app(service: ApiService, auth: BasicAuth | Credentials | None = None, prefix: str = "",
             guard: Guard | None = None) -> tornado.web.Application:
    """The tornado application serving the route table under `prefix`, behind `guard` (default: loopback
    hosts only, no foreign origin; see api.guard)."""
    guard = Guard.configure() if guard is None else guard
    api = Api(service, auth, guard)
    # the webhook routes come first and are open (their key is the secret), as Kestra's open-urls
    handlers = [*webhook_handlers(Webhooks(service), prefix, guard=guard), *ui_handlers(api, prefix),
                *api_handlers(api, prefix)]
    app = tornado.web.Application(handlers, default_handler_class=NotFoundHandler,
                                  compress_response=False, log_function=_log_request)
    app.settings["kestra_nb_api"] = api
    return app


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Log client and server errors only: a line per successful request costs more than the request."""
    status = handler.get_status()
    if status >= 400:
        log_method = access_log.warning if status < 500 else access_log.error
        log_method("%d %s %.2fms", status, handler._request_summary(), 1000.0 * handler.request.request_time())


class Server:
    """One standalone server: engine, service, HTTP listener; `serve()` runs it until `stop()` or a signal."""

    def __init__(self, home: str | os.PathLike[str] | None = None, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, auth: BasicAuth | Credentials | None = None, grace: float = GRACE,
                 allow_hosts: tuple[str, ...] = (), allow_origins: tuple[str, ...] = ()) -> None:
        if auth is None and not is_loopback(host):
            raise InsecureBindError(
                f"Refusing to listen on {host} without authentication: only loopback addresses may be served "
                "without it. Give --basic-auth USER:PASSWORD (or set KESTRA_NB_BASIC_AUTH) or --token TOKEN "
                "(or set KESTRA_NB_API_TOKEN).")
        self.home = None if home is None else Path(home)
        self.host = host
        self.port = port
        self.auth = Credentials.of(auth)
        self.grace = grace
        self.guard = Guard.configure(allow_hosts, allow_origins, bind=host)   # ValueError for a malformed origin
        self.engine: Any = None
        self.service: ApiService | None = None
        self.api: Api | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._http: tornado.httpserver.HTTPServer | None = None
        self.scheduler: Any = None

    @property
    def url(self) -> str:
        """The base URL clients use (`http://127.0.0.1:8080`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Open the store, start the engine on this loop and listen."""
        from .engine import Engine

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # The engine runs on its own loop thread, this loop answers HTTP: no render, step or store call of an
        # execution holds up a request (see handlers.on_engine_loop). Recovery waits until we listen.
        self.engine = Engine(self.home, recover=False)
        prefer_short_switches()
        self.service = ApiService(self.engine, base_url="")
        app = make_app(self.service, self.auth, guard=self.guard)
        self.api = app.settings["kestra_nb_api"]
        sockets = tornado.netutil.bind_sockets(self.port, self.host)
        self.port = sockets[0].getsockname()[1]
        self._http = tornado.httpserver.HTTPServer(app, xheaders=False, idle_connection_timeout=3600)
        self._http.add_sockets(sockets)
        from .engine.scheduler import Scheduler

        self.scheduler = Scheduler(self.engine)   # fires Schedule and Flow triggers if this process leads
        engine_loop = self.engine.loop
        engine_loop.call_soon_threadsafe(self.engine.recover)   # in the background, once listening
        engine_loop.call_soon_threadsafe(self.scheduler.start)

    async def serve(self) -> None:
        """Start, signal readiness, run until asked to stop, then shut down gracefully."""
        await self.start()
        self.ready.set()
        assert self._stop is not None
        await self._stop.wait()
        await self.shutdown()

    def stop(self) -> None:
        """Ask the server to shut down (from any thread)."""
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)

    async def shutdown(self) -> None:
        """Stop listening, give running executions `grace` seconds to end or pause, stop the rest, close."""
        if self._http is not None:
            self._http.stop()
        if self.scheduler is not None and self.engine is not None:
            # no new executions from triggers; another process may lead now
            await self.engine.on_loop(self.scheduler.stop)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        service = self.service
        while service is not None and loop.time() < deadline and any(
                state is not StateType.PAUSED for state in tuple(service.active.values())):
            await asyncio.sleep(0.02)
        # answers already computed (wait=true of executions that just ended) get written
        while self.api is not None and self.api.in_flight and loop.time() < min(deadline, loop.time() + 0.2):
            await asyncio.sleep(0.01)
        if self._http is not None:
            await self._http.close_all_connections()
        # what still runs stops as last committed: drivers, workers, timers, open requests
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if service is not None and self.engine is not None:
            await self.engine.on_loop(service.close)
        if self.engine is not None:
            self.engine.close()   # stops its drivers (what they drive stays as last committed) and its thread

    def run(self) -> int:
        """Serve in this thread until SIGTERM/SIGINT; returns the exit status (0)."""

        async def main() -> None:
            """Start, install the signal handlers, serve until asked to stop, shut down."""
            await self.start()
            assert self.loop is not None and self._stop is not None
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    self.loop.add_signal_handler(sig, self._stop.set)
                except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                    signal.signal(sig, lambda *_: self.stop())
            # the process is ours: what start-up allocated lives as long as the server, so keep it out of the
            # collector's scans, and collect the young generation less often (a server allocates many
            # short-lived documents per request)
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_THRESHOLD, 20, 20)
            auth = self.auth.describe() if self.auth else "no auth (loopback only)"
            store = getattr(self.engine.store, "path", "memory")
            print(f"kestra-nb server listening on {self.url} ({auth}; store {store})", flush=True)
            self.ready.set()
            await self._stop.wait()
            print("kestra-nb server: stopping", flush=True)
            await self.shutdown()

        asyncio.run(main())
        return 0


def serve_in_thread(home: str | os.PathLike[str] | None = None, host: str = DEFAULT_HOST, port: int = 0,
                    auth: BasicAuth | Credentials | None = None, grace: float = GRACE, allow_hosts: tuple[str, ...] = (),
                    allow_origins: tuple[str, ...] = ()) -> tuple[Server, threading.Thread]:
    """Run a server on a daemon thread (tests, benchmarks, notebooks); `server.stop()` then join the thread."""
    server = Server(home, host, port, auth, grace, allow_hosts, allow_origins)
    failure: list[BaseException] = []

    def main() -> None:
        """The thread's body: serve on a new loop; report a start-up failure to the caller."""
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failure.append(exc)
            server.ready.set()

    thread = threading.Thread(target=main, name="kestra_nb-server", daemon=True)
    thread.start()
    server.ready.wait()
    if failure:
        raise failure[0]
    return server, thread


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `kestra-nb server` is the entry point
    """Run the standalone server (see cli.py for the options)."""
    from .cli import main as cli_main

    return cli_main(["server", *(argv if argv is not None else sys.argv[1:])])


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "InsecureBindError", "Server", "make_app", "prefer_short_switches",
           "serve_in_thread"]
