"""Kestra's FriendlyId: a UUID as a base62 number (0-9A-Za-z), most significant digit first, no padding."""
from __future__ import annotations

import hashlib
import os
import re

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]   # two digits at a time: half the divisions
# A version-4 (random) UUID's fixed bits, as uuid.uuid4() sets them: version 4, RFC 4122 variant.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def base62(n: int) -> str:
    """Encode a non-negative integer in base62."""
    if n < 62:
        return ALPHABET[n]
    digits = []
    while n >= 3844:
        n, r = divmod(n, 3844)
        digits.append(_PAIRS[r])
    digits.append(_PAIRS[n] if n >= 62 else ALPHABET[n])
    return "".join(reversed(digits))


def new_id() -> str:
    """A fresh random id, as Kestra's IdUtils.create(): a random (version 4) UUID in base62."""
    return base62(int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR | _UUID4_SET)


def id_from(text: str) -> str:
    """A deterministic id for `text`, as Kestra's IdUtils.from() (UUID.nameUUIDFromBytes)."""
    digest = bytearray(hashlib.md5(text.encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x30  # version 3
    digest[8] = (digest[8] & 0x3F) | 0x80  # IETF variant
    return base62(int.from_bytes(digest, "big"))


NAMESPACE_RULE = "lower-case letters, digits, '_' and '-', in parts separated by single dots (company.team)"
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
NAMESPACE_MAX = 150


RESERVED_PART = "_files"


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
    if RESERVED_PART in namespace.split("."):
        # the storage keeps a namespace's files in its `_files` folder, beside its flows' execution files:
        # `a._files` would read and write those of `a`
        return f"`{RESERVED_PART}` is reserved (namespace files live there): it cannot be a part of a namespace"
    return None
