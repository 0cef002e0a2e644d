"""What a request to the standalone server must show before anything reads its body (the threats Jupyter
Server guards against, answered the same way):

- **DNS rebinding**: a page on `attacker.example`, whose name is made to resolve to 127.0.0.1, reads this
  server as its own origin. The `Host` header gives it away: only loopback names and addresses
  (`localhost`, `*.localhost`, 127.0.0.0/8, ::1), the address the server is bound to, and the names given
  with `--allow-host` (or `KESTRA_NB_ALLOWED_HOSTS`, comma-separated; `*` allows any) are answered; any
  other Host is 403. A server bound to a wildcard address (0.0.0.0, ::) needs credentials (see server.py)
  and answers any Host, as Jupyter's `allow_remote_access` does when it listens beyond loopback.
- **Cross-site requests**: a page on another origin can POST to loopback without reading the answer (a
  form, a `no-cors` fetch). A state-changing request (POST, PUT, DELETE, PATCH, and any webhook call)
  whose `Origin`, or without one its `Referer`, is neither the server's own (same host and port as the
  `Host` header) nor one given with `--allow-origin` (or `KESTRA_NB_ALLOWED_ORIGINS`) is 403. `Origin: null`
  (sandboxed frames, `file:` pages) is foreign. A request without either header (curl, SDKs, scripts) is
  not from a browser page and passes: the seed's curl calls work unchanged.
- **CORS** stays off: no `Access-Control-*` header is sent unless the request's origin was allowed with
  `--allow-origin`; then the answer and the preflight (`OPTIONS`) carry what a browser needs.

The Jupyter extension does not use this module for its API: Jupyter's own `check_host`/`check_origin` and
its token/XSRF rules cover those handlers. Its open webhook routes use a `Guard` built from Jupyter's
settings (`Guard.for_jupyter`).
"""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError

HOSTS_ENV = "KESTRA_NB_ALLOWED_HOSTS"
ORIGINS_ENV = "KESTRA_NB_ALLOWED_ORIGINS"
ANY = "*"
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
CORS_METHODS = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Accept, Last-Event-ID"
_HOST_PORT = re.compile(r"^(\[[^\]]*\]|[^:]*)(?::\d*)?$")


class Forbidden(ApiError):
    """403: a Host this server does not answer to, or a state-changing request from a foreign origin."""

    status = 403
    reason = "Forbidden"


def host_name(host: str) -> str:
    """The name or address of a `Host` header value, without its port or IPv6 brackets, lower case."""
    match = _HOST_PORT.match(host.strip())
    name = match.group(1) if match else host
    return name.strip("[]").rstrip(".").lower()


def is_loopback_name(name: str) -> bool:
    """`localhost` and its subdomains, the usual loopback aliases, 127.0.0.0/8 and ::1."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` lower case, as browsers send it (a trailing slash or path dropped)."""
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"an origin is scheme://host[:port], not {origin!r}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class Guard:
    """The Host allow-list and the origins allowed besides the server's own."""

    hosts: frozenset[str] = frozenset()             # names or addresses beyond loopback; "*" answers any
    origins: frozenset[str] = frozenset()           # foreign origins allowed (and given CORS); "*" any
    origin_pattern: re.Pattern[str] | None = field(default=None, compare=False)   # (Jupyter's allow_origin_pat)

    @classmethod
    def configure(cls, hosts: Iterable[str] = (), origins: Iterable[str] = (), bind: str | None = None,
                  env: Mapping[str, str] | None = None) -> Guard:
        """From the server's options and the environment; `bind` is the address the server listens on."""
        env = os.environ if env is None else env
        names = {ANY if h.strip() == ANY else host_name(h) for h in [*hosts, *_split(env.get(HOSTS_ENV))]}
        if bind is not None:
            bound = host_name(bind)
            try:
                wildcard = ipaddress.ip_address(bound).is_unspecified
            except ValueError:
                wildcard = False
            names.add(ANY if wildcard or not bound else bound)
        allowed = {ANY if o.strip() == ANY else normalise_origin(o) for o in [*origins, *_split(env.get(ORIGINS_ENV))]}
        return cls(frozenset(n for n in names if n), frozenset(allowed))

    @classmethod
    def for_jupyter(cls, settings: Mapping[str, Any]) -> Guard:
        """The same rules as a Jupyter server with these tornado settings (for handlers outside its own)."""
        hosts = {ANY} if settings.get("allow_remote_access") else set(settings.get("local_hostnames") or ())
        origin = settings.get("allow_origin") or ""
        pattern = settings.get("allow_origin_pat") or None
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        origins = {ANY} if origin == ANY else ({normalise_origin(origin)} if origin else set())
        return cls(frozenset(host_name(h) if h != ANY else ANY for h in hosts), frozenset(origins), pattern)

    # ------------------------------------------------------------------------------------------ checks

    def host_allowed(self, host: str | None) -> bool:
        """Whether this server answers a request sent to `host` (the Host header)."""
        if ANY in self.hosts:
            return True
        if not host:
            return False   # HTTP/1.1 requires a Host; a request without one is not from a browser we serve
        name = host_name(host)
        return is_loopback_name(name) or name in self.hosts

    def origin_allowed(self, origin: str) -> bool:
        """Whether a foreign `origin` was allowed by configuration."""
        if ANY in self.origins:
            return True
        if origin in self.origins:
            return True
        return self.origin_pattern is not None and self.origin_pattern.match(origin) is not None

    @staticmethod
    def origin_of(headers: Mapping[str, str]) -> str | None:
        """The page a browser request comes from: its `Origin`, else the origin of its `Referer`."""
        origin = headers.get("Origin")
        if origin is not None:
            return origin.strip().lower()
        referer = headers.get("Referer")
        if not referer:
            return None
        parts = urlsplit(referer.strip())
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}" if parts.scheme and parts.netloc else "null"

    def check(self, method: str, headers: Mapping[str, str], *, state_changing: bool | None = None) -> None:
        """Raise `Forbidden` unless the request may be answered (see the module's docstring)."""
        host = headers.get("Host")
        if not self.host_allowed(host):
            raise Forbidden(
                f"Forbidden: this server does not answer to the host '{host_name(host or '')}': it serves loopback "
                f"names and addresses and the hosts allowed with --allow-host (or {HOSTS_ENV})")
        if state_changing is None:
            state_changing = method.upper() in STATE_CHANGING
        if not state_changing:
            return
        origin = self.origin_of(headers)
        if origin is None or self.own(origin, host) or self.origin_allowed(origin):
            return
        raise Forbidden(
            f"Forbidden: a cross-origin request from '{origin}' may not change anything here: only pages of this "
            f"server's own origin and the origins allowed with --allow-origin (or {ORIGINS_ENV}) may")

    @staticmethod
    def own(origin: str, host: str | None) -> bool:
        """Whether `origin` is the server's own: the same host and port as the request's Host header."""
        if not host or origin == "null":
            return False
        return urlsplit(origin).netloc == host.strip().lower()

    def cors_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The CORS headers of an answer to a request from an allowed foreign origin (none otherwise)."""
        origin = headers.get("Origin")
        if not origin or not (self.origins or self.origin_pattern):
            return {}
        origin = origin.strip().lower()
        if origin == "null" or self.own(origin, headers.get("Host")) or not self.origin_allowed(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                "Vary": "Origin"}

    def preflight_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), empty if refused."""
        cors = self.cors_headers(headers)
        if not cors or not headers.get("Access-Control-Request-Method"):
            return {}
        return {**cors, "Access-Control-Allow-Methods": CORS_METHODS, "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "600"}


__all__ = ["ANY", "Forbidden", "Guard", "HOSTS_ENV", "ORIGINS_ENV", "host_name", "is_loopback_name",
           "normalise_origin"]
