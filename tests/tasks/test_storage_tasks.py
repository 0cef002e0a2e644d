"""Storage tasks (spec §5.21) and `split_file`, the streaming splitter behind Split and ForEachItem."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.errors import IllegalArgumentError, NotFoundError
from kestra_nb.model.execution import Level
from kestra_nb.store.storage import InternalStorage
from kestra_nb.tasks.registry import registry
from kestra_nb.tasks.storage import parse_size, split_file

SRC = "kestra:///company/team/f/executions/e1/tasks/t/r/data.txt"


@pytest.fixture
def storage(tmp_path: Path) -> InternalStorage:
    return InternalStorage(tmp_path / "storage")


def target(i: int) -> str:
    return f"kestra:///company/team/f/executions/e1/tasks/split/r/part-{i}.txt"


def contents(storage: InternalStorage, uris: list[str]) -> list[bytes]:
    return [storage.read_bytes(u) for u in uris]


# ------------------------------------------------------------------------------------------- split_file

def test_split_by_rows_keeps_separators_and_order(storage: InternalStorage) -> None:
    storage.put(SRC, b"a\nb\nc\nd\ne")
    uris = split_file(storage, SRC, rows=2, target=target)
    assert uris == [target(0), target(1), target(2)]
    assert contents(storage, uris) == [b"a\nb\n", b"c\nd\n", b"e"]


def test_split_by_rows_custom_separator(storage: InternalStorage) -> None:
    storage.put(SRC, b"1;;2;;3;;")
    assert contents(storage, split_file(storage, SRC, rows=1, separator=";;", target=target)) == \
        [b"1;;", b"2;;", b"3;;"]


def test_split_by_bytes_never_cuts_a_row_that_fits(storage: InternalStorage) -> None:
    storage.put(SRC, b"aaa\nbbb\ncc\nd\n")
    parts = contents(storage, split_file(storage, SRC, bytes=8, target=target))
    assert parts == [b"aaa\nbbb\n", b"cc\nd\n"]
    assert b"".join(parts) == b"aaa\nbbb\ncc\nd\n"


def test_split_by_bytes_cuts_a_row_longer_than_the_size(storage: InternalStorage) -> None:
    storage.put(SRC, b"ab\n" + b"x" * 10 + b"\nyz\n")
    parts = contents(storage, split_file(storage, SRC, bytes=4, target=target))
    assert b"".join(parts) == b"ab\n" + b"x" * 10 + b"\nyz\n"
    assert parts[0] == b"ab\n"
    assert all(len(p) <= 5 for p in parts)


def test_split_by_size_text(storage: InternalStorage) -> None:
    row = b"x" * 99 + b"\n"
    storage.put(SRC, row * 30)
    parts = contents(storage, split_file(storage, SRC, bytes="1KB", target=target))
    assert [len(p) for p in parts] == [1000, 1000, 1000]


def test_split_into_partitions_of_about_equal_rows(storage: InternalStorage) -> None:
    storage.put(SRC, b"".join(f"{i}\n".encode() for i in range(10)))
    parts = contents(storage, split_file(storage, SRC, partitions=3, target=target))
    assert [p.count(b"\n") for p in parts] == [4, 3, 3]
    assert b"".join(parts) == b"".join(f"{i}\n".encode() for i in range(10))


def test_more_partitions_than_rows_gives_one_file_per_row(storage: InternalStorage) -> None:
    storage.put(SRC, b"a\nb")
    assert contents(storage, split_file(storage, SRC, partitions=5, target=target)) == [b"a\n", b"b"]


def test_empty_file_gives_no_batch(storage: InternalStorage) -> None:
    storage.put(SRC, b"")
    assert split_file(storage, SRC, rows=3, target=target) == []
    assert split_file(storage, SRC, bytes=10, target=target) == []
    assert split_file(storage, SRC, partitions=2, target=target) == []


def test_split_streams_big_files_across_chunks(storage: InternalStorage) -> None:
    rows = [f"row-{i:07d}\n".encode() for i in range(50_000)]  # 600 kB, many read chunks
    storage.put(SRC, b"".join(rows))
    uris = split_file(storage, SRC, rows=7_000, target=target)
    assert len(uris) == 8
    assert b"".join(contents(storage, uris)) == b"".join(rows)
    assert storage.read_bytes(uris[1]).startswith(b"row-0007000\n")


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of `rows`, `bytes` or `partitions`"),
    ({"rows": 1, "bytes": 3}, "got `rows`, `bytes`"),
    ({"rows": 0}, "Invalid `rows` 0: expected an integer of at least 1"),
    ({"partitions": -1}, "Invalid `partitions` -1"),
    ({"bytes": "10 parsecs"}, "Invalid `bytes` `10 parsecs`: expected a size"),
    ({"bytes": 0}, "at least 1 byte"),
    ({"rows": 1, "separator": ""}, "Invalid `separator`"),
])
def test_split_rejects_bad_arguments(storage: InternalStorage, kwargs: dict[str, Any], message: str) -> None:
    storage.put(SRC, b"a\n")
    with pytest.raises(IllegalArgumentError, match=message.replace("(", r"\(")):
        split_file(storage, SRC, target=target, **kwargs)


def test_split_refuses_uris_outside_the_storage_and_missing_files(storage: InternalStorage) -> None:
    with pytest.raises(IllegalArgumentError, match="expected `kestra:///"):
        split_file(storage, "file:///etc/passwd", rows=1, target=target)
    with pytest.raises(IllegalArgumentError, match="leaves the storage|inside the storage"):
        split_file(storage, "kestra:///../../etc/passwd", rows=1, target=target)
    with pytest.raises(NotFoundError, match="File not found"):
        split_file(storage, SRC, rows=1, target=target)


def test_parse_size() -> None:
    assert parse_size(12) == 12
    assert parse_size("10MB") == 10 << 20
    assert parse_size("1kb") == 1024
    assert parse_size("512B") == 512
    assert parse_size("42") == 42


# ------------------------------------------------------------------------------------------- tasks

FLOW = "id: storage_flow\nnamespace: company.team\ntasks:\n"


def write(task_id: str, content: str, extension: str | None = None) -> str:
    ext = f"    extension: {extension}\n" if extension else ""
    return (f"  - id: {task_id}\n    type: io.kestra.plugin.core.storage.Write\n"
            f"    content: {json.dumps(content)}\n{ext}")


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def out(ex: Any, task_id: str) -> dict[str, Any]:
    return next(tr.outputs for tr in ex.task_run_list if tr.task_id == task_id)


def test_write_size_concat_split_delete(engine: Any) -> None:
    yaml = (FLOW + write("a", "hello\n", ".txt") + write("b", "wörld\nbye\n")
            + "  - id: size\n    type: io.kestra.plugin.core.storage.Size\n    uri: '{{ outputs.b.uri }}'\n"
            + "  - id: concat\n    type: io.kestra.plugin.core.storage.Concat\n"
              "    files: ['{{ outputs.a.uri }}', '{{ outputs.b.uri }}']\n"
              "    separator: \"--\\n\"\n    extension: .csv\n"
            + "  - id: split\n    type: io.kestra.plugin.core.storage.Split\n    from: '{{ outputs.concat.uri }}'\n"
              "    rows: 2\n"
            + "  - id: del\n    type: io.kestra.plugin.core.storage.Delete\n    uri: '{{ outputs.a.uri }}'\n"
            + "  - id: again\n    type: io.kestra.plugin.core.storage.Delete\n    uri: '{{ outputs.a.uri }}'\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", errors(engine, ex)
    storage = engine.store.storage
    a, b = out(ex, "a")["uri"], out(ex, "b")["uri"]
    assert a.startswith(f"kestra:///company/team/storage_flow/executions/{ex.id}/tasks/a/") and a.endswith(".txt")
    assert b.endswith(".ion")
    assert storage.read_bytes(b) == "wörld\nbye\n".encode()
    assert out(ex, "size") == {"size": len("wörld\nbye\n".encode())}
    concat = out(ex, "concat")["uri"]
    assert concat.endswith(".csv")
    assert storage.read_bytes(concat) == "hello\n--\nwörld\nbye\n--\n".encode()
    parts = [storage.read_bytes(u) for u in out(ex, "split")["uris"]]
    assert parts == [b"hello\n--\n", "wörld\nbye\n".encode(), b"--\n"]
    assert all(u.endswith(".csv") for u in out(ex, "split")["uris"])
    assert out(ex, "del") == {"uri": a, "deleted": True}
    assert out(ex, "again") == {"uri": a, "deleted": False}
    assert not storage.exists(a)


def test_concat_accepts_a_json_array_and_split_by_bytes_and_partitions(engine: Any) -> None:
    yaml = (FLOW + write("a", "1\n2\n3\n4\n") + write("b", "5\n6\n")
            + "  - id: concat\n    type: io.kestra.plugin.core.storage.Concat\n"
              "    files: '[\"{{ outputs.a.uri }}\", \"{{ outputs.b.uri }}\"]'\n"
            + "  - id: bytes\n    type: io.kestra.plugin.core.storage.Split\n    from: '{{ outputs.concat.uri }}'\n"
              "    bytes: 4B\n"
            + "  - id: parts\n    type: io.kestra.plugin.core.storage.Split\n    from: '{{ outputs.concat.uri }}'\n"
              "    partitions: '{{ 1 + 1 }}'\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", errors(engine, ex)
    storage = engine.store.storage
    assert out(ex, "concat")["uri"].endswith(".tmp")
    assert storage.read_bytes(out(ex, "concat")["uri"]) == b"1\n2\n3\n4\n5\n6\n"
    assert [storage.read_bytes(u) for u in out(ex, "bytes")["uris"]] == [b"1\n2\n", b"3\n4\n", b"5\n6\n"]
    assert [storage.read_bytes(u) for u in out(ex, "parts")["uris"]] == [b"1\n2\n3\n", b"4\n5\n6\n"]


def test_purge_current_execution_files(engine: Any) -> None:
    yaml = (FLOW + write("a", "x") + write("b", "y")
            + "  - id: purge\n    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert sorted(out(ex, "purge")["uris"]) == sorted([out(ex, "a")["uri"], out(ex, "b")["uri"]])
    assert not engine.store.storage.exists(out(ex, "a")["uri"])


@pytest.mark.parametrize("task, message", [
    ("    type: io.kestra.plugin.core.storage.Size\n    uri: file:///etc/passwd\n",
     "Invalid `uri`: Invalid internal storage URI `file:///etc/passwd`: expected `kestra:///…`"),
    ("    type: io.kestra.plugin.core.storage.Size\n    uri: kestra:///company/../../../etc/passwd\n",
     "Invalid `uri`: Invalid internal storage URI"),
    ("    type: io.kestra.plugin.core.storage.Size\n    uri: kestra:///company/team/nothing.txt\n",
     "Invalid `uri`: file not found: kestra:///company/team/nothing.txt"),
    (("    type: io.kestra.plugin.core.storage.Delete\n    uri: kestra:///company/team/nothing.txt\n"
      "    errorOnMissing: true\n"), "Unable to find file 'kestra:///company/team/nothing.txt'"),
    ("    type: io.kestra.plugin.core.storage.Delete\n    uri: /etc/passwd\n",
     "Invalid `uri`: Invalid internal storage URI `/etc/passwd`"),
    ("    type: io.kestra.plugin.core.storage.Concat\n    files: 'not json'\n",
     "Invalid `files`: expected a list of URIs or a JSON array of URIs, got: not json"),
    ("    type: io.kestra.plugin.core.storage.Concat\n    files: ['http://example.invalid/x']\n",
     "Invalid `files[0]`: Invalid internal storage URI"),
    ("    type: io.kestra.plugin.core.storage.Concat\n    files: ['kestra:///company/team/nothing.txt']\n",
     "Invalid `files`: file not found: kestra:///company/team/nothing.txt"),
    ("    type: io.kestra.plugin.core.storage.Split\n    from: kestra:///company/team/nothing.txt\n    rows: 1\n",
     "Invalid `from`: file not found"),
    ("    type: io.kestra.plugin.core.storage.Split\n    from: /tmp/x\n    rows: 1\n",
     "Invalid `from`: Invalid internal storage URI"),
])
def test_bad_inputs_fail_the_task_with_a_clear_message(engine: Any, task: str, message: str) -> None:
    ex = engine.run(FLOW + "  - id: t\n" + task)
    assert ex.state == "FAILED"
    assert any(message in m for m in errors(engine, ex)), errors(engine, ex)


@pytest.mark.parametrize("props, message", [
    ("    rows: 1\n    bytes: 10\n", "set exactly one of `rows`, `bytes` or `partitions`"),
    ("    bytes: lots\n", "Invalid `bytes` `lots`: expected a size"),
    ("    partitions: '{{ 0 }}'\n", "Invalid `partitions` `0`: expected an integer of at least 1"),
    ("    rows: '{{ \"x\" }}'\n", "Invalid `rows` `x`: expected an integer of at least 1"),
])
def test_split_bad_properties(engine: Any, props: str, message: str) -> None:
    ex = engine.run(FLOW + write("a", "1\n2\n")
                    + "  - id: t\n    type: io.kestra.plugin.core.storage.Split\n    from: '{{ outputs.a.uri }}'\n"
                    + props)
    assert ex.state == "FAILED"
    assert any(message in m for m in errors(engine, ex)), errors(engine, ex)


def test_legacy_names_resolve() -> None:
    for name in ("Concat", "Split", "Size", "Delete"):
        assert registry.canonical(f"io.kestra.core.tasks.storages.{name}") == f"io.kestra.plugin.core.storage.{name}"
    assert registry.canonical("io.kestra.core.tasks.storages.PurgeExecution") == \
        "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"


def test_write_renders_content_and_normalises_the_extension(engine: Any) -> None:
    ex = engine.run(FLOW + write("w", "{{ flow.id }}:{{ 1 + 1 }}", "csv")
                    + write("bad", "x", "'../../x'"))
    assert ex.state == "FAILED"
    uri = out(ex, "w")["uri"]
    assert uri.endswith(".csv") and engine.store.storage.read_bytes(uri) == b"storage_flow:2"
    assert any("Invalid `extension` `../../x`: expected a file extension such as .txt" in m
               for m in errors(engine, ex)), errors(engine, ex)
