"""The polling HTTP trigger (io.kestra.plugin.core.http.Trigger), as Kestra's TriggerTest (flows/valids/
http-listen.yaml): every `interval` the request is sent to a real loopback server, and an execution starts
when `responseCondition` holds, with the response as its `trigger` variables."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.scheduler_rig import Rig, aio, trigger_violation


class Answers:
    """A loopback HTTP server answering each GET with the status and body set on it, counting the requests."""

    def __init__(self) -> None:
        self.status, self.body, self.requests = 200, {"joke": "a ✓ joke"}, 0
        answers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                answers.requests += 1
                body = json.dumps(answers.body, ensure_ascii=False).encode()
                self.send_response(answers.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jokes/random"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def answers() -> Iterator[Answers]:
    server = Answers()
    yield server
    server.close()


def listen(url: str, extra: str = "", trigger_type: str = "io.kestra.plugin.core.http.Trigger") -> str:
    return f"""id: http-listen
namespace: io.kestra.tests
triggers:
  - id: http
    type: {trigger_type}
    uri: {url}
    responseCondition: "{{{{ response.statusCode == 200 }}}}"
    interval: PT10S
{extra}tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.code }}}} {{{{ trigger.body }}}} {{{{ trigger.uri }}}}"
"""


async def poll(rig: Rig, after: timedelta = timedelta(0)) -> list[dict[str, Any]]:
    """Tick `after` later, let the requests be answered; the documents of the executions started, ended."""
    rig.now += after
    await rig.scheduler.tick()
    await rig.scheduler.polls_done()
    found, _ = rig.engine.store.search_execution_documents(flow_id="http-listen", size=100)
    return [(await rig.engine.wait_async(doc["id"])).to_dict() for doc in found]


# follows TriggerTest.trigger (http-listen.yaml, with its legacy type name)
@aio
async def test_a_response_that_holds_starts_an_execution_with_the_response(answers: Answers) -> None:
    rig = Rig()
    rig.engine.deploy(listen(answers.url, trigger_type="io.kestra.plugin.fs.http.Trigger"))
    [doc] = await poll(rig)
    assert answers.requests == 1
    assert doc["state"]["current"] == "SUCCESS"
    assert doc["trigger"]["type"] == "io.kestra.plugin.core.http.Trigger"
    assert doc["trigger"]["variables"]["code"] == 200
    value = doc["taskRunList"][0]["outputs"]["value"]
    assert value == f'200 {{"joke": "a ✓ joke"}} {answers.url}'
    assert len(await poll(rig, timedelta(seconds=5))) == 1 and answers.requests == 1   # not due yet
    assert len(await poll(rig, timedelta(seconds=5))) == 2 and answers.requests == 2   # each interval
    rig.close()


@aio
async def test_a_response_that_does_not_hold_or_no_response_starts_nothing_and_polls_on(answers: Answers) -> None:
    rig = Rig()
    answers.status = 500
    rig.engine.deploy(listen(answers.url))
    assert await poll(rig) == [] and answers.requests == 1 and rig.scheduler.errors == []
    rig.engine.deploy(listen("http://127.0.0.1:9/closed"))   # nothing listens on the discard port
    assert await poll(rig, timedelta(seconds=10)) == []
    assert any("HTTP trigger evaluation failed" in e for e in rig.scheduler.errors), rig.scheduler.errors
    rig.engine.deploy(listen(answers.url))
    answers.status = 200
    assert len(await poll(rig, timedelta(seconds=10))) == 1   # tried again at the next interval
    rig.close()


@aio
async def test_the_default_condition_and_the_triggers_conditions(answers: Answers) -> None:
    rig = Rig()
    source = listen(answers.url, extra="""    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.code == 201 }}"
""").replace('    responseCondition: "{{ response.statusCode == 200 }}"\n', "")
    rig.engine.deploy(source)
    assert await poll(rig) == [] and answers.requests == 1   # 200 < 400 holds; the condition does not
    answers.status = 201
    assert len(await poll(rig, timedelta(seconds=10))) == 1
    answers.status = 404
    assert len(await poll(rig, timedelta(seconds=10))) == 1   # 404: the default condition does not hold
    rig.close()


@pytest.mark.parametrize(("extra", "path", "message"), [
    ("    interval: PT0.5S\n", "triggers[0].interval", "must be at least PT1S"),
    ("    encryptBody: true\n", "triggers[0].encryptBody", "needs Kestra's encryption key"),
    ("    method: FETCH\n", "triggers[0].method", "one of [GET, POST"),
])
def test_bad_http_triggers_are_refused(extra: str, path: str, message: str) -> None:
    trigger = ("  - id: http\n    type: io.kestra.plugin.core.http.Trigger\n    uri: http://127.0.0.1:1/\n"
               + extra)
    assert message in trigger_violation(trigger, path)


def test_an_http_trigger_without_uri_is_refused() -> None:
    assert "must not be null" in trigger_violation(
        "  - id: http\n    type: io.kestra.plugin.core.http.Trigger\n", "triggers[0].uri")
