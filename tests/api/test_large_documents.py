"""A large execution document is read from the store as it is sent (issue 13): the same JSON, in chunks, never
whole in the server's memory nor read on an event loop; a broken one is cut, not answered as if whole."""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import httpx
import pytest

from kestra_nb.api import service
from kestra_nb.errors import StoreError
from kestra_nb.store.sqlite import STREAM_BATCH, STREAM_OVER
from tests.api.conftest import SEED, Http

VALUES = STREAM_OVER + STREAM_BATCH + 7   # task runs over the threshold, in three chunks and a bit
MANY = f"""id: many
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(1, {VALUES}) }}}}"
    concurrencyLimit: 0
    tasks:
      - id: one
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"""


def test_the_store_reads_a_large_document_in_chunks_and_a_small_one_whole(engine: Any) -> None:
    big = engine.run(MANY)
    small = engine.run("id: small\nnamespace: company.team\ntasks:\n  - id: one\n"
                       "    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
    store = engine.store
    assert store.execution_text_stream(small.id) == store.get_execution_text(small.id)
    assert store.execution_text_stream("nope") is None
    stream = store.execution_text_stream(big.id)
    assert not isinstance(stream, str)
    chunks = list(stream)
    assert len(chunks) >= 4   # head, three batches of task runs, tail
    assert "".join(chunks) == store.get_execution_text(big.id)
    assert len(json.loads("".join(chunks))["taskRunList"]) == VALUES + 1


def test_a_document_stored_incompletely_is_an_error_when_read_in_chunks(engine: Any) -> None:
    big = engine.run(MANY)
    with sqlite3.connect(engine.store.path) as conn:
        conn.execute("DELETE FROM task_runs WHERE execution_id = ? AND seq = 5", (big.id,))
    stream = engine.store.execution_text_stream(big.id)
    with pytest.raises(StoreError, match=f"{VALUES} task runs stored, its row says {VALUES + 1}"):
        list(stream)


def test_get_sends_a_large_execution_in_chunks_and_the_same_json(http: Http) -> None:
    http.deploy(MANY)
    done = http.run("company.team", "many")
    assert done["state"]["current"] == "SUCCESS"
    r = http.get(f"/api/v1/main/executions/{done['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.headers
    document = r.json()
    assert len(document["taskRunList"]) == VALUES + 1
    assert document == http.server.engine.store.get_execution_document(done["id"])
    http.deploy(SEED)
    seed = http.run("company.team", "myflow")
    small = http.get(f"/api/v1/main/executions/{seed['id']}")   # a small one: whole, with its length
    assert small.status_code == 200 and "content-length" in small.headers and small.json()["id"] == seed["id"]


def test_a_client_that_leaves_early_or_a_broken_document_leaves_the_server_serving(http: Http) -> None:
    http.deploy(MANY)
    done = http.run("company.team", "many")
    path = f"/api/v1/main/executions/{done['id']}"
    with http.client.stream("GET", path) as r:   # leaves after the first chunk
        assert r.status_code == 200
        next(r.iter_bytes())
    with sqlite3.connect(http.server.engine.store.path) as conn:
        conn.execute("DELETE FROM task_runs WHERE execution_id = ? AND seq = ?", (done["id"], VALUES - 3))
    with pytest.raises(httpx.RemoteProtocolError):   # cut: never a whole-looking answer of a broken document
        http.get(path)
    http.deploy(SEED)
    assert http.run("company.team", "myflow")["state"]["current"] == "SUCCESS"


def test_following_a_large_execution_sends_its_newest_document_a_few_times_a_second(
        http: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each update of a large document is megabytes: a follower gets the newest one, at most FOLLOW_RATE a
    second (the end at once), never a backlog of every commit. (Every document counts as large here, so that
    a flow of a few hundred commits shows it.)"""
    monkeypatch.setattr(service, "LARGE_EVENT", 100)
    http.deploy("""id: slow
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 150) }}"
    tasks:
      - id: nap
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.005S
""")
    started = http.start("company.team", "slow")
    clock = time.monotonic()
    events: list[tuple[str, dict[str, Any]]] = []
    with http.client.stream("GET", f"/api/v1/main/executions/{started['id']}/follow",
                            timeout=httpx.Timeout(60)) as r:
        assert r.status_code == 200
        kind = ""
        for line in r.iter_lines():
            if line.startswith("id:"):
                kind = line[3:].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line[5:])))
                if kind == "end":
                    break
    elapsed = time.monotonic() - clock
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"progress"}
    end = events[-1][1]
    assert end["state"]["current"] == "SUCCESS" and len(end["taskRunList"]) == 151
    progress = [doc for kind, doc in events if kind == "progress"]
    assert len(progress) <= service.FOLLOW_RATE * elapsed + 3, (len(progress), elapsed)
    counts = [len(doc.get("taskRunList") or ()) for doc in progress]
    assert counts == sorted(counts)   # always a newer document


def test_a_search_the_store_cannot_answer_alone_reads_batch_after_batch(http: Http,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`q` is matched on the documents: they are read SCAN_BATCH at a time, only the page asked for is kept,
    and the total counts every match across the batches."""
    monkeypatch.setattr(service, "SCAN_BATCH", 3)
    http.deploy(SEED)
    http.deploy(SEED.replace("id: myflow", "id: other"))
    mine = [http.run("company.team", "myflow")["id"] for _ in range(7)]
    for _ in range(4):
        http.run("company.team", "other")
    pages = [http.get("/api/v1/main/executions/search",
                      params={"q": "myflow", "size": 3, "page": page, "sort": "state.startDate:asc"}).json()
             for page in (1, 2, 3, 4)]
    assert [p["total"] for p in pages] == [7, 7, 7, 7]
    assert [doc["id"] for p in pages for doc in p["results"]] == mine
    assert pages[3]["results"] == []
    bad = http.get("/api/v1/main/executions/search", params={"q": "myflow", "page": 0})
    assert bad.status_code == 422 and "page and size" in bad.text

