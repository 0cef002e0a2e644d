"""Kestra's FriendlyId: a UUID as a base62 number (0-9A-Za-z), most significant digit first, no padding."""
from __future__ import annotations

import hashlib
import re
import uuid

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int) -> str:
    """Encode a non-negative integer in base62."""
    if n == 0:
        return "0"
    digits = []
    while n:
        n, r = divmod(n, 62)
        digits.append(ALPHABET[r])
    return "".join(reversed(digits))


def new_id() -> str:
    """A fresh random id, as Kestra's IdUtils.create()."""
    return base62(uuid.uuid4().int)


def id_from(text: str) -> str:
    """A deterministic id for `text`, as Kestra's IdUtils.from() (UUID.nameUUIDFromBytes)."""
    digest = bytearray(hashlib.md5(text.encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x30  # version 3
    digest[8] = (digest[8] & 0x3F) | 0x80  # IETF variant
    return base62(int.from_bytes(digest, "big"))


NAMESPACE_RULE = "lower-case letters, digits, '_' and '-', in parts separated by single dots (company.team)"
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
NAMESPACE_MAX = 150


def namespace_problem(namespace: str) -> str | None:
    """What is wrong with `namespace` by Kestra's rule (`^[a-z0-9][a-z0-9._-]*`, at most 150 characters),
    with no empty part (`a..b`, `a.`): a namespace is a path in the internal storage and its files must stay
    reachable. None when it is fine."""
    if not namespace:
        return "a namespace must not be blank"
    if len(namespace) > NAMESPACE_MAX:
        return f"a namespace has at most {NAMESPACE_MAX} characters"
    if not _NAMESPACE.fullmatch(namespace):
        return f"a namespace is made of {NAMESPACE_RULE}"
    return None
