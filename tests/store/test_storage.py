"""Internal storage: URI layout, the path gate, atomic writes, purge with the execution."""
from __future__ import annotations

import io

import pytest

from kestra_nb.errors import IllegalArgumentError, NotFoundError
from kestra_nb.store import open_store
from kestra_nb.store.storage import InternalStorage, execution_prefix


def test_uri_layout_matches_kestra():
    assert InternalStorage.task_uri("company.team", "MyFlow", "e1", "t1", "tr1", "out.csv") == \
        "kestra:///company/team/myflow/executions/e1/tasks/t1/tr1/out.csv"
    assert InternalStorage.input_uri("company.team", "myflow", "e1", "file", "../../etc/passwd") == \
        "kestra:///company/team/myflow/executions/e1/inputs/file/passwd"
    assert execution_prefix("a.b", "f", "e") == "/a/b/f/executions/e/"


def test_put_open_size_delete(tmp_path):
    storage = InternalStorage(tmp_path)
    uri = InternalStorage.task_uri("ns", "f", "e", "t", "tr", "a file.txt")
    storage.put(uri, b"hello")
    assert storage.read_bytes(uri) == b"hello" and storage.size(uri) == 5 and storage.exists(uri)
    storage.put(uri, io.BytesIO(b"stream"))
    assert storage.read_bytes(uri) == b"stream"
    assert storage.list("kestra:///ns/f/executions/e") == [uri]
    assert storage.delete(uri) and not storage.delete(uri) and not storage.exists(uri)
    with pytest.raises(NotFoundError):
        storage.size(uri)
    with pytest.raises(NotFoundError):
        storage.open(uri)


@pytest.mark.parametrize("uri", [
    "kestra:///../secret", "kestra:///a/../../b", "kestra:///a/%2e%2e/%2e%2e/b", "file:///etc/passwd",
    "kestra:///", "kestra:///a\x00b", "kestra:///a\\..\\..\\b", "/etc/passwd",
])
def test_path_gate_refuses_escapes(tmp_path, uri):
    storage = InternalStorage(tmp_path / "root")
    with pytest.raises(IllegalArgumentError):
        storage.put(uri, b"x")
    assert not (tmp_path / "secret").exists() and not (tmp_path / "b").exists()


def test_symlink_out_of_the_root_is_refused(tmp_path):
    (tmp_path / "root" / "ns").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "ns" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(IllegalArgumentError):
        InternalStorage(tmp_path / "root").put("kestra:///ns/link/x", b"x")
    assert not (tmp_path / "outside" / "x").exists()


@pytest.mark.parametrize("url", ["memory:", None])
def test_files_are_purged_with_their_execution(tmp_path, url):
    from kestra_nb import Engine

    store = open_store(url if url else str(tmp_path / "home"))
    engine = Engine(store)
    try:
        ex = engine.run("id: f\nnamespace: ns\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
                        )
        uri = store.storage.task_uri("ns", "f", ex.id, "t", ex.task_run_list[0].id, "out.txt")
        store.storage.put(uri, b"x")
        assert store.delete_execution(ex.id)
        assert not store.storage.exists(uri)
    finally:
        engine.close()
        store.close()


def test_metrics_round_trip(tmp_path):
    for store in (open_store("memory:"), open_store(str(tmp_path / "home"))):
        try:
            store.append_metrics([{"executionId": "e1", "taskRunId": "r1", "name": "rows", "type": "counter",
                                   "value": 3.0, "tags": {}}])
            assert [m["name"] for m in store.list_metrics("e1")] == ["rows"]
            assert store.list_metrics("e1", task_run_id="r2") == []
        finally:
            store.close()
