"""Compare our JSON with Kestra's documents key by key, ids and dates aside (their formats are checked)."""
from __future__ import annotations

import re
from typing import Any

ID = re.compile(r"^[0-9A-Za-z]{1,22}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z$")
DURATION = re.compile(r"^PT(\d+H)?(\d+M)?(\d+(\.\d{1,9})?S)?$")
ID_KEYS = {"id", "executionId", "originalId", "parentId", "parentTaskRunId"}
DATE_KEYS = {"date", "startDate", "endDate", "originalCreatedDate", "scheduleDate", "timestamp"}


def assert_kestra_shape(ours: Any, theirs: Any, *, extra: set[str] = frozenset(),
                        missing: set[str] = frozenset(), path: str = "$") -> None:
    """Same keys (but `extra` ones we add and `missing` ones we leave out), same values but ids/dates."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: expected an object, got {ours!r}"
        added = set(ours) - set(theirs) - extra
        lacking = set(theirs) - set(ours) - missing
        assert not added, f"{path}: keys Kestra does not have: {sorted(added)}"
        assert not lacking, f"{path}: keys missing: {sorted(lacking)}"
        assert [k for k in ours if k in theirs] == [k for k in theirs if k in ours], \
            f"{path}: key order differs: {list(ours)} vs {list(theirs)}"
        for key in theirs:
            if key not in ours:
                continue
            sub = f"{path}.{key}"
            if key in ID_KEYS:
                assert isinstance(ours[key], str) and ID.match(ours[key]), f"{sub}: not a Kestra id: {ours[key]!r}"
            elif key in DATE_KEYS:
                assert isinstance(ours[key], str) and INSTANT.match(ours[key]), f"{sub}: not an instant: {ours[key]!r}"
            elif key == "duration":
                assert isinstance(ours[key], str) and DURATION.match(ours[key]), f"{sub}: not a duration: {ours[key]!r}"
            else:
                assert_kestra_shape(ours[key], theirs[key], extra=extra, missing=missing, path=sub)
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_kestra_shape(a, b, extra=extra, missing=missing, path=f"{path}[{i}]")
    else:
        assert ours == theirs and type(ours) is type(theirs), f"{path}: {ours!r} != {theirs!r}"
