"""LiveRun: events drained on the calling thread, widget pushes throttled, a tick while running, kill paths."""
from __future__ import annotations

import threading
import time
from typing import Any

from kestra_nb.engine.events import ExecutionUpdated, LogsAppended
from kestra_nb.jupyter.live import LiveRun
from kestra_nb.jupyter.widgets.viewmodel import ViewModel


def document(state: str = "RUNNING", task_state: str = "RUNNING", n: int = 1) -> dict[str, Any]:
    """A small Kestra execution document (one task run per `n`)."""
    start = "2026-01-01T00:00:00Z"
    histories = [{"state": "CREATED", "date": start}, {"state": "RUNNING", "date": "2026-01-01T00:00:00.001Z"}]
    if state != "RUNNING":
        histories.append({"state": state, "date": "2026-01-01T00:00:01Z"})
    runs = []
    for i in range(n):
        run_histories = [{"state": "CREATED", "date": "2026-01-01T00:00:00.002Z"},
                         {"state": "RUNNING", "date": "2026-01-01T00:00:00.003Z"}]
        if task_state != "RUNNING":
            run_histories.append({"state": task_state, "date": "2026-01-01T00:00:00.900Z"})
        runs.append({"id": f"tr{i}", "taskId": f"t{i}", "state": {"current": task_state, "histories": run_histories},
                     "attempts": [{"state": {"current": task_state}}]})
    return {"id": "ex1", "namespace": "company.team", "flowId": "f", "flowRevision": 1,
            "state": {"current": state, "histories": histories}, "taskRunList": runs}


class StubView:
    """Records pushes (time, `now` and state) like ExecutionView.push would apply them."""

    def __init__(self, on_push: Any = None) -> None:
        self.pushes: list[tuple[float, float, str]] = []
        self.on_push = on_push
        self.updates = 0

    def push(self, model: ViewModel, *, document: bool = True, epoch_ms: float | None = None) -> None:
        state = model.state(epoch_ms)
        self.pushes.append((time.monotonic(), state["now"], state["summary"]["state"]))
        self.updates += 1
        if self.on_push is not None:
            self.on_push(self)


def test_events_already_queued_coalesce_into_one_push() -> None:
    model, view = ViewModel(), StubView()
    live = LiveRun(model, view)
    for i in range(500):
        live.put(ExecutionUpdated("ex1", "RUNNING", document(n=i % 7 + 1), False))  # type: ignore[arg-type]
    live.put(ExecutionUpdated("ex1", "SUCCESS", document("SUCCESS", "SUCCESS", 3), True))  # type: ignore[arg-type]
    live.finish("done")
    outcome = live.wait()
    assert outcome.finished and outcome.result == "done" and not outcome.interrupted
    assert view.updates == 1 and view.pushes[-1][2] == "SUCCESS"
    assert [r["task"] for r in model.rows()] == ["t0", "t1", "t2"]


def test_pushes_are_throttled_while_events_stream() -> None:
    model, view = ViewModel(), StubView()
    live = LiveRun(model, view, max_rate=25)
    stop = threading.Event()

    def produce() -> None:
        """A busy engine: thousands of updates as fast as the queue takes them, then the end."""
        for i in range(5000):
            live.put(ExecutionUpdated("ex1", "RUNNING", document(n=1 + i % 5), False))  # type: ignore[arg-type]
            live.put(LogsAppended("ex1", ()))
            if i % 100 == 0:
                time.sleep(0.002)  # spread the stream over time, as a real run would
        stop.set()
        live.finish()

    started = time.monotonic()
    threading.Thread(target=produce, daemon=True).start()
    outcome = live.wait()
    elapsed = time.monotonic() - started
    assert outcome.finished and stop.is_set()
    assert view.updates <= 25 * elapsed + 2, (view.updates, elapsed)
    gaps = [b[0] - a[0] for a, b in zip(view.pushes, view.pushes[1:-1])]
    assert all(gap >= 0.039 for gap in gaps), gaps  # the final push may follow closely; none before it


def test_running_bars_grow_without_events() -> None:
    model = ViewModel()
    model.update(document())

    def on_push(view: StubView) -> None:
        if len(view.pushes) == 3:
            live.finish()

    view = StubView(on_push)
    live = LiveRun(model, view, tick=0.02)
    live.put(ExecutionUpdated("ex1", "RUNNING", document(), False))  # type: ignore[arg-type]
    outcome = live.wait()
    assert outcome.finished
    nows = [p[1] for p in view.pushes]
    assert len(nows) >= 3 and nows[0] < nows[1] < nows[2]


def test_no_tick_once_everything_ended() -> None:
    model = ViewModel()
    model.update(document("SUCCESS", "SUCCESS"))
    assert not model.running()
    view = StubView()
    live = LiveRun(model, view, tick=0.001)
    timer = threading.Timer(0.1, live.finish)
    timer.start()
    live.wait()
    assert view.updates == 1  # only the final push


def test_keyboard_interrupt_kills_and_keeps_waiting() -> None:
    model = ViewModel()
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        live.put(ExecutionUpdated("ex1", "KILLED", document("KILLED", "KILLED"), True))  # type: ignore[arg-type]
        live.finish("killed")

    def on_push(view: StubView) -> None:
        if len(view.pushes) == 1:
            raise KeyboardInterrupt  # Ctrl-C lands while the view is updated

    view = StubView(on_push)
    live = LiveRun(model, view, kill=kill)
    live.put(ExecutionUpdated("ex1", "RUNNING", document(), False))  # type: ignore[arg-type]
    outcome = live.wait()
    assert killed.is_set() and outcome.interrupted and outcome.finished and outcome.result == "killed"
    assert view.pushes[-1][2] == "KILLED"


def test_timeout_kills() -> None:
    model = ViewModel()
    model.update(document())
    live = LiveRun(model, None, timeout=0.05, kill=lambda: live.finish("killed"))
    outcome = live.wait()
    assert outcome.timed_out and outcome.finished and outcome.result == "killed"


def test_runner_error_is_handed_over() -> None:
    live = LiveRun(ViewModel())
    live.finish(None, RuntimeError("boom"))
    outcome = live.wait()
    assert isinstance(outcome.error, RuntimeError) and outcome.finished
