"""What the standalone server accepts as credentials, and the loopback rule it listens by.

HTTP Basic as Kestra OSS does it (spec §7): `--basic-auth user:password` or `KESTRA_NB_BASIC_AUTH`; a request
is accepted with `Authorization: Basic base64(user:password)` or a `BASIC_AUTH` cookie holding the same token.
A bearer token, as Kestra's API tokens are sent (`Authorization: Bearer <token>`, what `KESTRA_API_TOKEN`
makes Kestra's own clients send): `--token` or `KESTRA_NB_API_TOKEN`; it is only read from the header (a
browser never sends it by itself, so it needs no XSRF defence). With both configured, either passes. Any
other request to an authenticated route is 401 with an empty body and `WWW-Authenticate: Basic realm="Kestra"`.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import socket
from dataclasses import dataclass

ENV = "KESTRA_NB_BASIC_AUTH"
TOKEN_ENV = "KESTRA_NB_API_TOKEN"
MIN_TOKEN = 16        # characters: a bearer token shorter than this is refused at start-up (guessable)
MAX_TOKEN = 4096
# RFC 6750's b64token characters: what an Authorization header can carry as one token
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
REALM = "Kestra"
CHALLENGE = f'Basic realm="{REALM}"'


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """One user and password; `check` compares in constant time."""

    username: str
    password: str

    @classmethod
    def parse(cls, text: str) -> BasicAuth:
        """`user:password` (the password may contain colons); ValueError if malformed."""
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            raise ValueError("basic auth must be given as USER:PASSWORD")
        return cls(user, password)

    @property
    def token(self) -> str:
        """base64(user:password), as sent in the header and the BASIC_AUTH cookie."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    def check(self, authorization: str | None, cookie: str | None = None) -> bool:
        """Whether the Authorization header (or the BASIC_AUTH cookie) carries these credentials."""
        for candidate in (authorization, cookie):
            if not candidate:
                continue
            scheme, _, token = candidate.strip().partition(" ")
            if candidate is authorization:
                if scheme.lower() != "basic":
                    continue
            else:
                token = candidate.strip()
            try:
                user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            if hmac.compare_digest(user.encode(), self.username.encode()) and hmac.compare_digest(
                    password.encode(), self.password.encode()):
                return True
        return False


def check_token(token: str) -> str:
    """A bearer token as configured: RFC 6750 characters, MIN_TOKEN to MAX_TOKEN long; ValueError otherwise."""
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise ValueError(f"the API token must be {MIN_TOKEN} to {MAX_TOKEN} characters long, not {len(token)}")
    bad = sorted(set(token) - _TOKEN_CHARS)
    if bad:
        raise ValueError(f"the API token may only hold letters, digits and -._~+/= (found {bad[0]!r})")
    return token


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the server accepts: Basic credentials, a bearer token, or both (either passes)."""

    basic: BasicAuth | None = None
    token: str | None = None

    @classmethod
    def of(cls, auth: BasicAuth | Credentials | None) -> Credentials | None:
        """Credentials from what a server was given (BasicAuth alone, as before, or Credentials)."""
        if auth is None or isinstance(auth, Credentials):
            return auth
        return cls(auth)

    @classmethod
    def configure(cls, basic: str | None = None, token: str | None = None,
                  env: dict[str, str] | None = None) -> Credentials | None:
        """From the server's options, else the environment (KESTRA_NB_BASIC_AUTH, KESTRA_NB_API_TOKEN); None when
        neither gives any. ValueError for malformed ones."""
        env = dict(os.environ) if env is None else env
        basic = basic or env.get(ENV) or None
        token = token or env.get(TOKEN_ENV) or None
        if basic is None and token is None:
            return None
        return cls(BasicAuth.parse(basic) if basic else None, check_token(token) if token else None)

    @property
    def security(self) -> str:
        """The OpenAPI security schemes these credentials stand for (a key of api.openapi.SCHEMES)."""
        return "+".join(name for name, on in (("basic", self.basic), ("bearer", self.token)) if on)

    def describe(self) -> str:
        """How requests authenticate, for the server's start-up line (never the secret itself)."""
        ways = ([f"basic auth as {self.basic.username}"] if self.basic else []) + (
            ["bearer token"] if self.token else [])
        return " or ".join(ways)

    def check(self, authorization: str | None, cookie: str | None = None) -> bool:
        """Whether the request carries accepted credentials (a bearer token only in the header)."""
        if self.basic is not None and self.basic.check(authorization, cookie):
            return True
        if self.token is None or not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.token.encode())


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(text, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


__all__ = ["CHALLENGE", "ENV", "TOKEN_ENV", "BasicAuth", "Credentials", "check_token", "is_loopback"]
