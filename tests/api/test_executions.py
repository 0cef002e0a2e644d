"""Executions API over real HTTP: create (inputs, labels, revision, scheduleDate, wait, timeout), get, search,
follow, kill, delete, labels, change-status, validate, latest, outputs, and the engine-backed actions."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.api.conftest import INPUTS_FLOW, PAUSE_FLOW, SEED, SLEEP_FLOW

E = "/api/v1/main/executions"


def sse_events(text: str) -> list[tuple[str, dict]]:
    """Parse a whole event stream: [(id, data)]; checks Kestra's framing (id line, data line, blank line)."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("id: ") and lines[1].startswith("data: "), block
        events.append((lines[0][4:], json.loads(lines[1][6:])))
    assert text.endswith("\n\n")
    return events


# -------------------------------------------------------------------------------------------------- create


def test_create_with_multipart_inputs_non_ascii(http):
    http.deploy(INPUTS_FLOW)
    doc = http.run("company.team", "inputs", files={"name": (None, "Wörld ✓ 漢字"), "count": (None, "5")})
    assert doc["state"]["current"] == "SUCCESS"
    assert doc["inputs"] == {"name": "Wörld ✓ 漢字", "count": 5, "flag": None, "doc": None}
    assert doc["outputs"] == {"greeting": "Wörld ✓ 漢字/5"}
    logs = http.get(f"/api/v1/main/logs/{doc['id']}").json()
    assert any(e["message"] == "Hello Wörld ✓ 漢字 x5" for e in logs)


def test_create_with_file_input_both_part_names(http, server):
    http.deploy(INPUTS_FLOW)
    doc = http.run("company.team", "inputs", files={"name": (None, "x"), "doc": ("data.csv", b"a,b\n1,2\n")})
    uri = doc["inputs"]["doc"]
    assert uri == f"kestra:///company/team/inputs/executions/{doc['id']}/inputs/doc/data.csv"
    stored = server.engine.store.storage.root / "company" / "team" / "inputs" / "executions" / doc["id"] / "inputs"
    assert (stored / "doc" / "data.csv").read_bytes() == b"a,b\n1,2\n"
    assert server.service.storage.read_bytes(uri) == b"a,b\n1,2\n"
    # 0.x: part name `files`, filename = the input id
    doc = http.run("company.team", "inputs", files={"name": (None, "x"), "files": ("doc", b"legacy")})
    assert doc["inputs"]["doc"].endswith(f"/executions/{doc['id']}/inputs/doc/doc")


def test_create_input_errors_are_422_with_kestra_messages(http):
    http.deploy(INPUTS_FLOW)
    r = http.post(f"{E}/company.team/inputs", files={"count": (None, "4.5")})
    assert r.status_code == 422
    message = r.json()["message"]
    assert message.startswith("Invalid entity: ")
    assert "Missing required input:name" in message and "Invalid value for input `count`" in message
    assert "_embedded" not in r.json()


def test_create_without_body_and_with_empty_multipart(http):
    http.deploy(SEED)
    assert http.post(f"{E}/company.team/myflow").status_code == 200
    r = http.post(f"{E}/company.team/myflow", content=b"--b0undary--\r\n",
                  headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"])
def test_create_rejects_other_bodies_with_415(http, content_type):
    http.deploy(SEED)
    r = http.post(f"{E}/company.team/myflow", content=b"{}", headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["message"]


def test_create_labels_revision_and_kind(http):
    http.deploy(SEED)
    http.put("/api/v1/main/flows/company.team/myflow", content=SEED.replace("hello from kestra", "v2"),
             headers={"Content-Type": "application/x-yaml"})
    r = http.post(f"{E}/company.team/myflow?labels=team%3Adata&labels=url:http://x/y&revision=1&wait=true")
    doc = r.json()
    assert r.status_code == 200 and doc["flowRevision"] == 1 and doc["outputs"] == {"mydata": "hello from kestra"}
    assert doc["labels"] == [{"key": "team", "value": "data"}, {"key": "url", "value": "http://x/y"},
                             {"key": "system.correlationId", "value": doc["id"]}]
    assert http.run("company.team", "myflow")["flowRevision"] == 2
    assert http.post(f"{E}/company.team/myflow?revision=7").status_code == 404
    assert http.post(f"{E}/company.team/myflow?kind=TEST").json()["kind"] == "TEST"


def test_create_errors(http):
    http.deploy(SEED)
    r = http.post(f"{E}/company.team/nope")
    assert r.status_code == 404 and r.json()["message"] == "Not Found: Requested Flow is not found."
    r = http.post(f"{E}/company.team/myflow?labels=system.username:me")
    assert r.status_code == 422
    assert r.json()["message"] == ("Illegal argument: System labels can only be set by Kestra itself, offending "
                                   "label: system.username=me")
    assert http.post(f"{E}/company.team/myflow?labels=nocolon").status_code == 422
    assert http.post(f"{E}/company.team/myflow?wait=maybe").status_code == 400
    assert http.post(f"{E}/company.team/myflow?revision=x").status_code == 400
    assert http.post(f"{E}/company.team/myflow?scheduleDate=tomorrow").status_code == 400
    http.deploy(SEED.replace("id: myflow", "id: off") + "disabled: true\n")
    r = http.post(f"{E}/company.team/off")
    assert r.status_code == 409 and r.json()["message"] == "Illegal state: Requested Flow is disabled."


def test_schedule_date_keeps_it_created_until_then(http):
    http.deploy(SEED)
    when = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = http.start("company.team", "myflow", params={"scheduleDate": stamp})
    assert doc["state"]["current"] == "CREATED" and doc["scheduleDate"].startswith(stamp[:19])
    assert http.get(f"{E}/{doc['id']}").json()["state"]["current"] == "CREATED"
    final = http.wait_state(doc["id"], "SUCCESS")
    assert parse_time(final["state"]["histories"][1]["date"]) >= when


def parse_time(text: str) -> datetime:
    from kestra_nb.model.jsonfmt import parse_instant

    return parse_instant(text)


def test_schedule_date_with_wait_answers_at_the_end(http):
    http.deploy(SEED)
    stamp = (datetime.now(timezone.utc) + timedelta(seconds=0.2)).isoformat()
    doc = http.run("company.team", "myflow", params={"scheduleDate": stamp})
    assert doc["state"]["current"] == "SUCCESS" and "scheduleDate" in doc


def test_wait_holds_while_paused_and_answers_after_resume(http):
    http.deploy(PAUSE_FLOW)
    answer: dict = {}

    def call() -> None:
        with httpx.Client(base_url=http.url, timeout=30) as c:
            answer["r"] = c.post(f"{E}/company.team/paused", params={"wait": "true"})

    thread = threading.Thread(target=call)
    thread.start()
    [paused] = wait_for_search(http, "PAUSED")
    assert thread.is_alive()  # still held: PAUSED is not finished
    r = http.post(f"{E}/{paused['id']}/resume")
    assert r.status_code == 204 and r.content == b""
    thread.join(10)
    doc = answer["r"].json()
    assert doc["id"] == paused["id"] and doc["state"]["current"] == "SUCCESS" and doc["outputs"] == {"out": "resumed"}


def wait_for_search(http, state: str, count: int = 1) -> list[dict]:
    """The executions in `state`, once there are `count` of them (follows them via SSE, no sleeps)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = http.get(f"{E}/search", params={"filters[state][EQUALS]": state}).json()["results"]
        if len(found) >= count:
            return found
        latest = http.get(f"{E}/search", params={"sort": "state.startDate:desc", "size": 1}).json()["results"]
        if latest:
            http.wait_state(latest[0]["id"], state, timeout=2)
    raise AssertionError(f"no execution reached {state}")


def test_timeout_extension_answers_with_the_execution_as_it_is(http):
    http.deploy(PAUSE_FLOW)
    t0 = time.monotonic()
    doc = http.run("company.team", "paused", params={"timeout": "PT0.3S"})
    assert 0.25 <= time.monotonic() - t0 < 5
    assert doc["state"]["current"] == "PAUSED" and "url" in doc
    # timeout alone implies waiting
    http.deploy(SEED)
    r = http.post(f"{E}/company.team/myflow", params={"timeout": "PT10S"})
    assert r.json()["state"]["current"] == "SUCCESS"
    assert http.post(f"{E}/company.team/myflow", params={"timeout": "soon"}).status_code == 400


def test_two_hundred_simultaneous_waits(http):
    http.deploy(INPUTS_FLOW)

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=http.url, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(
                client.post(f"{E}/company.team/inputs", params={"wait": "true"},
                            files={"name": (None, f"n{i}"), "count": (None, str(i))}) for i in range(200)))

    responses = asyncio.run(main())
    assert all(r.status_code == 200 for r in responses)
    docs = [r.json() for r in responses]
    assert [d["outputs"]["greeting"] for d in docs] == [f"n{i}/{i}" for i in range(200)]
    assert all(d["state"]["current"] == "SUCCESS" for d in docs)
    assert len({d["id"] for d in docs}) == 200


def test_validate_inputs(http):
    http.deploy(INPUTS_FLOW)
    r = http.post(f"{E}/company.team/inputs/validate", files={"name": (None, "x"), "count": (None, "2")})
    body = r.json()
    assert r.status_code == 200 and body["id"] == "inputs" and body["namespace"] == "company.team"
    by_id = {i["input"]["id"]: i for i in body["inputs"]}
    assert by_id["count"]["value"] == 2 and by_id["count"]["errors"] == []
    assert by_id["count"]["input"]["defaults"] == "1"  # Kestra writes Property values as strings
    r = http.post(f"{E}/company.team/inputs/validate", files={"count": (None, "x")})
    by_id = {i["input"]["id"]: i for i in r.json()["inputs"]}
    assert r.status_code == 200
    assert by_id["name"]["errors"] == [{"message": "Missing required input:name"}]
    assert by_id["count"]["errors"][0]["message"].startswith("Invalid value for input `count`")
    assert http.get(f"{E}/search").json()["total"] == 0  # nothing was created


# ----------------------------------------------------------------------------------------------- read


def test_get_and_404(http):
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    got = http.get(f"/api/v1/executions/{doc['id']}")
    assert got.status_code == 200 and got.json()["id"] == doc["id"]
    assert got.content == http.server.engine.store.get_execution_text(doc["id"]).encode()   # sent as stored
    r = http.get(f"{E}/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "Not Found: Execution 'nope' not found.",
                        "_links": {"self": {"href": f"{E}/nope", "templated": False}}}


def test_outputs_route_of_kestra_2(http):
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    assert http.get(f"/api/v1/main/outputs/executions/{doc['id']}").json() == {"mydata": "hello from kestra"}
    assert http.get("/api/v1/main/outputs/executions/nope").status_code == 404


def test_search_filters_legacy_paging_and_sort(http):
    http.deploy(SEED)
    http.deploy(SEED.replace("id: myflow", "id: other").replace("company.team", "company.team.sub"))
    ids = [http.run("company.team", "myflow", params={"labels": f"n:{i}"})["id"] for i in range(3)]
    other = http.run("company.team.sub", "other")["id"]

    def search(**params):
        r = http.get(f"{E}/search", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    page = search(**{"filters[namespace][EQUALS]": "company.team", "size": 2, "sort": "state.startDate:asc"})
    assert page["total"] == 3 and [d["id"] for d in page["results"]] == ids[:2]
    page = search(**{"filters[namespace][EQUALS]": "company.team", "size": 2, "page": 2,
                     "sort": "state.startDate:asc"})
    assert [d["id"] for d in page["results"]] == ids[2:]
    assert search(**{"filters[namespace][PREFIX]": "company.team"})["total"] == 4
    assert search(namespace="company.team")["total"] == 4          # legacy: a prefix
    assert search(**{"filters[flowid][EQUALS]": "other"})["results"][0]["id"] == other  # kestrapy 1.3 lower-cases
    assert search(**{"filters[FLOW_ID][EQUALS]": "other"})["total"] == 1
    assert search(**{"filters[labels][EQUALS][n]": "1"})["results"][0]["id"] == ids[1]
    assert search(labels="n:2")["results"][0]["id"] == ids[2]
    assert search(**{"filters[state][IN]": "SUCCESS,FAILED"})["total"] == 4
    assert search(**{"filters[state][IN]": "['FAILED', 'KILLED']"})["total"] == 0   # the generated client's repr
    assert search(state="SUCCESS", flowId="myflow")["total"] == 3
    assert search(**{"filters[q][EQUALS]": other[:8]})["results"][0]["id"] == other
    assert search(**{"filters[flowId][CONTAINS]": "the", "size": 1})["total"] == 1   # matched on the documents
    assert search(**{"filters[timeRange][EQUALS]": "PT1H"})["total"] == 4
    start = http.get(f"{E}/{ids[1]}").json()["state"]["startDate"]
    assert search(**{"filters[startDate][GREATER_THAN_OR_EQUAL_TO]": start, "filters[flowId][EQUALS]": "myflow"}
                  )["total"] == 2
    desc = search(sort="state.startDate:desc", size=10)["results"]
    assert [d["id"] for d in desc] == [other, *reversed(ids)]
    assert http.get(f"{E}/search", params={"sort": "nope"}).status_code == 422
    assert http.get(f"{E}/search", params={"sort": "bad:asc"}).status_code == 422
    assert http.get(f"{E}/search", params={"filters[bogus][EQUALS]": "x"}).status_code == 400
    assert http.get(f"{E}/search", params={"filters[state][LIKE]": "x"}).status_code == 400
    assert http.get(f"{E}/search", params={"page": 0}).status_code == 422
    flow_page = http.get(E, params={"namespace": "company.team", "flowId": "myflow", "size": 1}).json()
    assert flow_page["total"] == 3 and len(flow_page["results"]) == 1
    r = http.get(E, params={"namespace": "company.team"})
    assert r.status_code == 400 and "flowId" in r.json()["message"]


def test_latest_executions(http):
    http.deploy(SEED)
    first = http.run("company.team", "myflow")
    last = http.run("company.team", "myflow")
    r = http.post(f"{E}/latest", json=[{"namespace": "company.team", "id": "myflow"},
                                       {"namespace": "company.team", "id": "never"}])
    assert r.status_code == 200
    [latest] = r.json()
    assert latest == {"id": last["id"], "flowId": "myflow", "namespace": "company.team",
                      "startDate": last["state"]["startDate"], "status": "SUCCESS"}
    assert first["id"] != last["id"]
    assert http.post(f"{E}/latest", json={"x": 1}).status_code == 422
    assert http.post(f"{E}/latest", content=b"{not json", headers={"Content-Type": "application/json"}
                     ).status_code == 422


# ---------------------------------------------------------------------------------------------- follow


def test_follow_streams_start_progress_end_and_closes(http):
    http.deploy(PAUSE_FLOW)
    doc = http.start("company.team", "paused")
    received: list[str] = []
    with httpx.Client(base_url=http.url, timeout=30) as c:
        with c.stream("GET", f"{E}/{doc['id']}/follow", headers={"Accept": "text/event-stream"}) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
            lines = r.iter_lines()
            text = ""
            for line in lines:
                text += line + "\n"
                if line.startswith("data:") and json.loads(line[5:]).get("state", {}).get("current") == "PAUSED":
                    received.append("paused")
                    assert http.post(f"{E}/{doc['id']}/resume").status_code == 204
            # the server closed the stream after `end`
    events = sse_events(text)
    assert events[0][0] == "start" and events[0][1]["id"] == doc["id"]
    assert events[-1][0] == "end" and events[-1][1]["state"]["current"] == "SUCCESS"
    assert all(e[0] == "progress" for e in events[1:-1])
    states = [e[1]["state"]["current"] for e in events[1:]]
    assert "PAUSED" in states and states[-2:] == ["SUCCESS", "SUCCESS"]
    assert received == ["paused"]


def test_follow_of_a_finished_execution_and_of_an_unknown_one(http):
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    r = http.get(f"{E}/{doc['id']}/follow")
    events = sse_events(r.text)
    assert [e[0] for e in events] == ["start", "end"]
    assert events[1][1] == {k: v for k, v in doc.items() if k != "url"}
    r = http.get(f"{E}/nope/follow")
    assert r.status_code == 404 and r.json()["message"].startswith("Not Found")


def test_follow_unsubscribes_when_the_client_leaves(http, server):
    http.deploy(PAUSE_FLOW)
    doc = http.start("company.team", "paused")
    bus = server.engine.bus

    def listeners() -> int:
        return len(bus._listeners.get(doc["id"], ()))

    with httpx.Client(base_url=http.url, timeout=30) as c:
        with c.stream("GET", f"{E}/{doc['id']}/follow") as r:
            # the lines iterator is kept: dropped, its finalizer (whenever the collector runs) closes the connection
            lines = r.iter_lines()
            while not ((line := next(lines)).startswith("data:") and "PAUSED" in line):
                pass
            assert listeners() == 1   # this stream's, and nobody else's: the execution rests PAUSED
    # the connection is closed: the server notices and drops the subscription (on the engine's loop, even
    # while the stream's step there is waiting for the next update)
    deadline = time.monotonic() + 30
    while listeners() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listeners() == 0


# ------------------------------------------------------------------------------------------------ kill


def test_kill_202_then_killed(http):
    http.deploy(SLEEP_FLOW)
    doc = http.start("company.team", "sleepy")
    http.wait_state(doc["id"], "RUNNING")
    r = http.delete(f"{E}/{doc['id']}/kill")
    assert r.status_code == 202 and r.content == b""
    final = http.wait_state(doc["id"], "KILLED")
    assert [h["state"] for h in final["state"]["histories"]][-2:] == ["KILLING", "KILLED"]
    # finished: accepted with cascade (the default), 409 without
    assert http.delete(f"{E}/{doc['id']}/kill").status_code == 202
    r = http.delete(f"{E}/{doc['id']}/kill", params={"isOnKillCascade": "false"})
    assert r.status_code == 409
    assert r.json()["message"] == "Illegal state: Execution is already finished, can't kill it"
    assert http.delete(f"{E}/nope/kill").status_code == 404


def test_kill_action_of_kestra_2_answers_with_the_execution(http):
    http.deploy(PAUSE_FLOW)
    doc = http.start("company.team", "paused")
    http.wait_state(doc["id"], "PAUSED")
    r = http.delete(f"/api/v1/main/executions/{doc['id']}/actions/kill")
    assert r.status_code == 200
    assert r.json()["id"] == doc["id"] and r.json()["state"]["current"] in ("KILLING", "KILLED")
    assert http.wait_state(doc["id"], "KILLED")["state"]["current"] == "KILLED"


def test_kill_a_scheduled_execution(http):
    http.deploy(SEED)
    stamp = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    doc = http.start("company.team", "myflow", params={"scheduleDate": stamp})
    assert http.delete(f"{E}/{doc['id']}/kill").status_code == 202
    assert http.get(f"{E}/{doc['id']}").json()["state"]["current"] == "KILLED"


# ----------------------------------------------------------------------------------- delete / labels / status


def test_delete_execution_and_its_logs(http):
    http.deploy(INPUTS_FLOW)
    doc = http.run("company.team", "inputs", files={"name": (None, "x")})
    assert http.get(f"/api/v1/main/logs/{doc['id']}").json()
    r = http.delete(f"{E}/{doc['id']}")
    assert r.status_code == 204 and r.content == b""
    assert http.get(f"{E}/{doc['id']}").status_code == 404
    assert http.get(f"/api/v1/main/logs/{doc['id']}").json() == []
    assert http.delete(f"{E}/{doc['id']}").status_code == 404


def test_delete_a_running_execution_kills_it_first(http):
    http.deploy(SLEEP_FLOW)
    doc = http.start("company.team", "sleepy")
    http.wait_state(doc["id"], "RUNNING")
    assert http.delete(f"{E}/{doc['id']}").status_code == 204
    assert http.get(f"{E}/{doc['id']}").status_code == 404


def test_set_labels(http):
    http.deploy(SEED)
    doc = http.run("company.team", "myflow", params={"labels": "a:1"})
    r = http.post(f"{E}/{doc['id']}/labels", json=[{"key": "b", "value": "2"}])
    assert r.status_code == 200
    assert r.json()["labels"] == [{"key": "b", "value": "2"}, {"key": "system.correlationId", "value": doc["id"]}]
    assert http.get(f"{E}/{doc['id']}").json()["labels"] == r.json()["labels"]
    r = http.post(f"{E}/{doc['id']}/actions/labels", json=[{"key": "system.username", "value": "x"}])
    assert r.status_code == 422 and "System labels" in r.json()["message"]
    assert http.post(f"{E}/{doc['id']}/labels", json=[{"key": "c"}]).status_code == 422
    assert http.post(f"{E}/nope/labels", json=[]).status_code == 404
    http.deploy(PAUSE_FLOW)
    running = http.start("company.team", "paused")
    http.wait_state(running["id"], "PAUSED")
    r = http.post(f"{E}/{running['id']}/labels", json=[{"key": "b", "value": "2"}])
    assert r.status_code == 400 and r.text == "The execution is not terminated"
    assert r.headers["content-type"].startswith("text/plain")


def test_change_status(http):
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    r = http.post(f"{E}/{doc['id']}/change-status", params={"status": "FAILED"})
    assert r.status_code == 200 and r.json()["state"]["current"] == "FAILED"
    assert http.get(f"{E}/{doc['id']}").json()["state"]["current"] == "FAILED"
    r = http.post(f"{E}/{doc['id']}/actions/change-status", params={"status": "RUNNING"})
    assert r.status_code == 422
    assert r.json()["message"] == ("Illegal argument: You can only change the status of an execution to a "
                                   "terminal state.")
    assert http.post(f"{E}/{doc['id']}/change-status").status_code == 400
    assert http.post(f"{E}/{doc['id']}/change-status", params={"status": "NOPE"}).status_code == 400
    http.deploy(PAUSE_FLOW)
    paused = http.start("company.team", "paused")
    http.wait_state(paused["id"], "PAUSED")
    r = http.post(f"{E}/{paused['id']}/change-status", params={"status": "SUCCESS"})
    assert r.status_code == 422 and "terminated execution" in r.json()["message"]


# -------------------------------------------------------------------- restart / replay / resume / pause


def test_resume_with_on_resume_inputs_and_the_2_0_form(http):
    http.deploy("""id: approve
namespace: company.team
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.gate.onResume.reason }}"
""")
    doc = http.start("company.team", "approve")
    http.wait_state(doc["id"], "PAUSED")
    r = http.post(f"{E}/{doc['id']}/resume", files={"x": (None, "y")})
    assert r.status_code == 422 and "Missing required input:reason" in r.json()["message"]
    r = http.post(f"{E}/{doc['id']}/actions/resume", files={"reason": (None, "apprové ✓")})
    assert r.status_code == 200 and r.json()["id"] == doc["id"]
    final = http.wait_state(doc["id"], "SUCCESS")
    assert final["taskRunList"][-1]["outputs"] == {"value": "apprové ✓"}
    r = http.post(f"{E}/{doc['id']}/resume")
    assert r.status_code == 409 and r.json()["message"].startswith("Illegal state: ")
    assert http.post(f"{E}/nope/resume").status_code == 404
    assert http.post(f"{E}/{doc['id']}/resume", json={}).status_code == 415


def test_pause_restart_and_replay(http):
    http.deploy(SLEEP_FLOW.replace("PT60S", "PT0.2S"))
    doc = http.start("company.team", "sleepy")
    http.wait_state(doc["id"], "RUNNING")
    r = http.post(f"{E}/{doc['id']}/pause")
    assert r.status_code == 204
    http.wait_state(doc["id"], "PAUSED")
    assert http.post(f"{E}/{doc['id']}/actions/resume").json()["state"]["current"] == "RUNNING"
    http.wait_state(doc["id"], "SUCCESS")
    assert http.post(f"{E}/{doc['id']}/pause").status_code == 409
    r = http.post(f"{E}/{doc['id']}/replay")
    assert r.status_code == 200
    replay = r.json()
    assert replay["id"] != doc["id"] and replay["parentId"] == doc["id"]
    assert http.wait_state(replay["id"], "SUCCESS")["state"]["current"] == "SUCCESS"
    r = http.post(f"{E}/{doc['id']}/restart")
    assert r.status_code == 200 and r.json()["id"] == doc["id"] and r.json()["state"]["current"] == "RESTARTED"
    assert http.wait_state(doc["id"], "SUCCESS")["metadata"]["attemptNumber"] == 2
    assert http.post(f"{E}/nope/restart").status_code == 404


# ------------------------------------------------------------------------------------------------ logs


def test_logs_list_download_and_filters(http):
    http.deploy(INPUTS_FLOW)
    doc = http.run("company.team", "inputs", files={"name": (None, "Wörld")})
    logs = http.get(f"/api/v1/main/logs/{doc['id']}").json()
    hello = [e for e in logs if e["message"] == "Hello Wörld x1"]
    assert hello and hello[0]["taskId"] == "hello" and hello[0]["level"] == "INFO"
    assert set(hello[0]) >= {"namespace", "flowId", "timestamp", "level", "thread", "message", "deleted",
                              "attemptNumber"}
    assert http.get(f"/api/v1/logs/{doc['id']}", params={"minLevel": "ERROR"}).json() == []
    assert http.get(f"/api/v1/logs/{doc['id']}", params={"taskId": "nope"}).json() == []
    assert http.get(f"/api/v1/logs/{doc['id']}", params={"minLevel": "LOUD"}).status_code == 400
    r = http.get(f"/api/v1/main/logs/{doc['id']}/download")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert f'filename="{doc["id"]}.log"' in r.headers["content-disposition"]
    assert any(line.endswith(" INFO Hello Wörld x1") for line in r.text.splitlines())
    # the kestra lib downloads the logs of an execution right after creating it: never a 404
    assert http.get("/api/v1/logs/unknown/download").status_code == 200


def test_logs_follow_sends_stored_then_live_entries(http):
    http.deploy("""id: chatty
namespace: company.team
tasks:
  - id: one
    type: io.kestra.plugin.core.log.Log
    message: first
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
  - id: two
    type: io.kestra.plugin.core.log.Log
    message: second
""")
    doc = http.start("company.team", "chatty")
    http.wait_state(doc["id"], "PAUSED")
    messages = []
    with httpx.Client(base_url=http.url, timeout=30) as c:
        with c.stream("GET", f"/api/v1/main/logs/{doc['id']}/follow") as r:
            assert r.headers["content-type"] == "text/event-stream"
            for line in r.iter_lines():
                if line.startswith("id:"):
                    assert line == "id: progress"
                if line.startswith("data:"):
                    messages.append(json.loads(line[5:])["message"])
                    if messages == ["first"]:
                        assert http.post(f"{E}/{doc['id']}/resume").status_code == 204
                    if "second" in messages:
                        break  # Kestra never ends a logs stream: the client leaves
    assert messages == ["first", "second"]
