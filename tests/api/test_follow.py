"""Following a remote execution: over the real server's SSE route, and against a loopback server whose
streams drop, go silent, flood or send an oversized event (reconnect once, then poll, within budgets);
`kestra-nb run --server --follow` printing progress."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kestra_nb.cli import Progress, main
from kestra_nb.client import FollowLimits, KestraClient, LogFollow
from tests.api.conftest import SLEEP_FLOW

RUNNING = {"id": "ex1", "namespace": "n", "flowId": "f", "state": {"current": "RUNNING"},
           "taskRunList": [{"id": "tr1", "taskId": "a", "state": {"current": "RUNNING"}}]}
SUCCESS = {**RUNNING, "state": {"current": "SUCCESS"},
           "taskRunList": [{"id": "tr1", "taskId": "a", "state": {"current": "SUCCESS"}}], "outputs": {"x": 1}}

AFTER = {**SUCCESS, "taskRunList": [*SUCCESS["taskRunList"],
                                    {"id": "tr9", "taskId": "notify", "state": {"current": "SUCCESS"}}]}

LOGS = [{"executionId": "ex1", "taskId": "a", "level": "INFO", "message": f"line {i}"} for i in range(3)]


def event(event_id: str, doc: Any) -> bytes:
    return f"id: {event_id}\ndata: {json.dumps(doc)}\n\n".encode()


class Remote:
    """A loopback server: each follow request plays the next behaviour of `streams`; each GET of the
    execution answers the next document of `documents` (the last one again once they are used up)."""

    def __init__(self) -> None:
        self.streams: list[str] = []
        self.log_streams: list[str] = []
        self.documents: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.release = threading.Event()   # ends a silent stream (at teardown)
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                remote.requests.append(self.path)
                if self.path.startswith("/api/v1/main/logs/"):
                    behaviour = remote.log_streams.pop(0) if remote.log_streams else "missing"
                    getattr(self, "logs_" + behaviour)()
                    return
                if self.path.endswith("/follow"):
                    behaviour = remote.streams.pop(0) if remote.streams else "drop"
                    getattr(self, "stream_" + behaviour)()
                    return
                doc = remote.documents.pop(0) if len(remote.documents) > 1 else remote.documents[0]
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _start(self, length: int | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def logs_two_then_drop(self) -> None:
                self._start(length=10_000)
                self.wfile.write(event("progress", LOGS[0]) + event("progress", LOGS[1]))

            def logs_all_then_wait(self) -> None:   # as Kestra's: the stored entries, then it stays open
                self._start()
                self.wfile.write(b"".join(event("progress", entry) for entry in LOGS))
                self.wfile.flush()
                remote.release.wait(30)

            def logs_missing(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def stream_normal(self) -> None:
                self._start()
                self.wfile.write(event("start", {"id": "ex1"}) + event("progress", RUNNING) + event("end", SUCCESS))

            def stream_after(self) -> None:   # SUCCESS, then its afterExecution task, then `end` (Kestra)
                self._start()
                self.wfile.write(event("progress", SUCCESS) + event("progress", AFTER) + event("end", AFTER))

            def stream_drop(self) -> None:   # the connection breaks in the middle of the body
                self._start(length=10_000)
                self.wfile.write(event("progress", RUNNING))

            def stream_silent(self) -> None:
                self._start()
                self.wfile.write(event("progress", RUNNING))
                self.wfile.flush()
                remote.release.wait(30)

            def stream_flood(self) -> None:
                self._start()
                for _ in range(50):
                    self.wfile.write(event("progress", RUNNING))

            def stream_huge(self) -> None:
                self._start()
                self.wfile.write(b"id: progress\ndata: " + b"x" * 5000 + b"\n\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def follows(self) -> int:
        return sum(path.endswith("/follow") for path in self.requests)


@pytest.fixture
def remote() -> Iterator[Remote]:
    r = Remote()
    thread = threading.Thread(target=r.httpd.serve_forever, daemon=True)
    thread.start()
    yield r
    r.release.set()
    r.httpd.shutdown()
    r.httpd.server_close()
    thread.join(10)


def follow(remote: Remote, **limits: Any) -> tuple[dict[str, Any] | None, list[str]]:
    seen: list[str] = []
    with KestraClient(remote.url) as client:
        client.follow_limits = FollowLimits(**{"poll_min": 0.01, "poll_max": 0.02, **limits})
        final = client.follow("ex1", lambda doc: seen.append(doc["state"]["current"]))
    return final, seen


def test_a_whole_stream_needs_no_poll(remote):
    remote.streams = ["normal"]
    final, seen = follow(remote)
    assert final == SUCCESS and seen == ["RUNNING", "SUCCESS"]
    assert remote.requests == ["/api/v1/main/executions/ex1/follow"]


def test_a_stream_ends_at_its_end_event_not_at_the_first_terminated_state(remote):
    remote.streams = ["after"]
    final, seen = follow(remote)
    assert final == AFTER and seen == ["SUCCESS", "SUCCESS"] and remote.follows() == 1


def test_a_dropped_stream_is_opened_once_more_then_polled(remote):
    remote.streams = ["drop", "drop"]
    remote.documents = [RUNNING, RUNNING, RUNNING, SUCCESS]
    final, seen = follow(remote)
    assert final == SUCCESS and seen == ["RUNNING", "SUCCESS"]   # each new document once
    assert remote.follows() == 2 and remote.requests[-1] == "/api/v1/main/executions/ex1"


def test_a_reconnection_that_ends_it_stops_there(remote):
    remote.streams = ["drop", "normal"]
    remote.documents = [RUNNING]
    final, seen = follow(remote)
    assert final == SUCCESS and remote.follows() == 2 and seen == ["RUNNING", "SUCCESS"]


def test_a_silent_stream_counts_as_dropped(remote):
    remote.streams = ["silent", "silent"]
    remote.documents = [RUNNING, RUNNING, SUCCESS]
    final, seen = follow(remote, idle=0.2)
    assert final == SUCCESS and remote.follows() == 2


@pytest.mark.parametrize("behaviour, limits", [("flood", {"max_events": 5}), ("huge", {"max_event_bytes": 1000}),
                                               ("flood", {"max_bytes": 2000})])
def test_a_stream_over_budget_is_not_reopened_but_polled(remote, behaviour, limits):
    remote.streams = [behaviour, behaviour]
    remote.documents = [RUNNING, SUCCESS]
    final, seen = follow(remote, **limits)
    assert final == SUCCESS and seen[-1] == "SUCCESS"
    assert remote.follows() == 1


def test_polling_stops_at_the_deadline(remote):
    import time

    remote.streams = ["drop", "drop"]
    remote.documents = [RUNNING]
    with KestraClient(remote.url) as client:
        client.follow_limits = FollowLimits(poll_min=0.01, poll_max=0.02)
        assert client.follow("ex1", deadline=time.monotonic() + 0.3) is None


def test_logs_stream_until_stopped_and_a_reconnection_skips_what_came(remote):
    remote.log_streams = ["two_then_drop", "all_then_wait"]
    got: list[dict[str, Any]] = []
    third = threading.Event()

    def on_log(entry: dict[str, Any]) -> None:
        got.append(entry)
        if len(got) == 3:
            third.set()

    with KestraClient(remote.url) as client:
        follower = LogFollow(client, "ex1", on_log)
        thread = threading.Thread(target=follower.run, daemon=True)
        thread.start()
        assert third.wait(10)
        follower.stop()   # the stream is still open: stop() ends its blocked read
        thread.join(10)
        assert not thread.is_alive()
    assert got == LOGS and follower.seen == 3
    assert [path for path in remote.requests if "/logs/" in path] == ["/api/v1/main/logs/ex1/follow"] * 2


def test_logs_that_cannot_be_streamed_leave_it_to_a_fetch(remote):
    with KestraClient(remote.url) as client:
        follower = LogFollow(client, "ex1", lambda entry: None)
        follower.run()   # a 404: it returns at once
        assert follower.seen == 0
        stopped = LogFollow(client, "ex1", lambda entry: None)
        stopped.stop()
        stopped.run()   # stopped before it began: no stream is read
        assert stopped.seen == 0


def test_progress_prints_each_new_state_once():
    import io

    out = io.StringIO()
    ticks = iter([0.0, 0.5, 1.25, 2.0])
    progress = Progress(out, clock=lambda: next(ticks))
    progress(RUNNING)
    progress(RUNNING)
    progress({**SUCCESS, "taskRunList": [*SUCCESS["taskRunList"], {"id": "tr2", "taskId": "each", "value": "v1",
                                                                   "state": {"current": "SUCCESS"}}]})
    assert out.getvalue().splitlines() == [
        "[   0.5s]   a RUNNING", "[   0.5s] execution ex1 RUNNING",
        "[   2.0s]   a SUCCESS", "[   2.0s]   each [v1] SUCCESS", "[   2.0s] execution ex1 SUCCESS"]


def test_cli_run_follow_on_the_real_server(server, tmp_path, capsys):
    flow = tmp_path / "flow.yml"
    flow.write_text("id: steps\nnamespace: company.team\ntasks:\n"
                    "  - id: first\n    type: io.kestra.plugin.core.debug.Return\n    format: one\n"
                    "  - id: second\n    type: io.kestra.plugin.core.log.Log\n    message: two\n")
    assert main(["run", str(flow), "--server", server.url, "--follow"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.endswith("first SUCCESS") for line in lines) and any(line.endswith("second SUCCESS")
                                                                         for line in lines)
    assert [line for line in lines if line.startswith("[") and " execution " in line][-1].endswith(" SUCCESS")
    assert "company.team.steps (revision 1) execution" in out   # the summary follows
    assert any(line.endswith("INFO second: two") for line in lines), out   # its log line, as it came
    assert main(["run", str(flow), "--server", server.url, "--follow", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["state"]["current"] == "SUCCESS" and "first SUCCESS" in captured.err
    assert main(["run", str(flow), "--follow"]) == 2
    assert "--follow goes with --server URL" in capsys.readouterr().err
    sleepy = tmp_path / "sleepy.yml"
    sleepy.write_text(SLEEP_FLOW)
    assert main(["run", str(sleepy), "--server", server.url, "--follow", "--timeout", "0.5"]) == 1
    captured = capsys.readouterr()
    assert "nap RUNNING" in captured.out and "did not end within 0.5s; it was killed" in captured.err
