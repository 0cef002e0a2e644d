"""Kestra's FriendlyId (IdUtils): random and name-based ids in base62."""
from __future__ import annotations

import re
import uuid

from kestra_nb.model.ids import ALPHABET, base62, id_from, new_id


def _decode(text: str) -> int:
    n = 0
    for ch in text:
        n = n * 62 + ALPHABET.index(ch)
    return n


def test_base62_round_trips_at_every_digit_boundary() -> None:
    for n in [0, 1, 61, 62, 63, 3843, 3844, 3845, 62 ** 3 - 1, 62 ** 3, 62 ** 5, 2 ** 64, 2 ** 128 - 1]:
        text = base62(n)
        assert _decode(text) == n, n
        assert text == "0" or text[0] != "0", text   # no padding
    assert base62(61) == "z" and base62(62) == "10" and base62(3844) == "100"


def test_new_ids_are_random_version_4_uuids() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        assert re.fullmatch(r"[0-9A-Za-z]{1,22}", text)
        u = uuid.UUID(int=_decode(text))
        assert u.version == 4 and u.variant == uuid.RFC_4122


def test_name_based_ids_are_kestras() -> None:
    # IdUtils.from("a"): UUID.nameUUIDFromBytes, a version-3 UUID, in base62
    assert id_from("a") == base62(uuid.UUID(bytes=__import__("hashlib").md5(b"a").digest(), version=3).int)
    assert id_from("a") == id_from("a") != id_from("b")
