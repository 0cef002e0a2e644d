"""HTTP Basic authentication as Kestra OSS does it (spec §7), and the loopback rule of the standalone server.

Credentials come from `--basic-auth user:password` or `KESTRA_NB_BASIC_AUTH`. A request is accepted with
`Authorization: Basic base64(user:password)` or a `BASIC_AUTH` cookie holding the same token; otherwise
the answer is 401 with an empty body and `WWW-Authenticate: Basic realm="Kestra"`.
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

    @classmethod
    def from_env(cls) -> BasicAuth | None:
        """The credentials of KESTRA_NB_BASIC_AUTH, if set."""
        text = os.environ.get(ENV)
        return cls.parse(text) if text else None

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


__all__ = ["CHALLENGE", "ENV", "BasicAuth", "is_loopback"]
