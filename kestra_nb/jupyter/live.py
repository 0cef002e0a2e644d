"""Following one execution from the kernel's main thread: events in through a queue, the view updated, throttled.

The engine (or the HTTP client, for `--server`) runs on another thread and only hands events over
(`LiveRun.put`, `LiveRun.finish` are thread-safe). The thread that called `LiveRun.wait()` - the kernel's
main thread, which owns the display - drains them and pushes the view at most `MAX_RATE` times a second,
plus a periodic tick while something runs so its bar grows without events. Ctrl-C (KeyboardInterrupt)
and the timeout kill the execution, then waiting goes on until it has ended (bounded by `KILL_GRACE`).

Updating the display (update_display_data) from the main thread while the cell blocks is what works on
every ipykernel and what nbclient/papermill record (../shared/spec/jupyter-testing.md §3, §4).
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.events import ExecutionUpdated, LogsAppended
from .widgets.viewmodel import ViewModel

MAX_RATE = 25.0        # display updates per second, at most
TICK = 0.25            # seconds between updates while a bar grows and no event came
MAX_WAIT = 0.25        # longest blocking wait: a signal that does not wake a lock is still seen this soon
KILL_GRACE = 10.0      # seconds to wait for a killed execution to end before giving up


def family(execution_id: str, put: Callable[[Any], None]) -> Callable[[Any], None]:
    """A listener for every execution's events (subscribe it with None) passing on those of `execution_id`
    and of the executions it starts, at any depth (Subflow, ForEachItem: their `trigger.variables.executionId`
    is a followed execution); children's logs stay out of the view's log pane."""
    followed = {execution_id}

    def listener(event: Any) -> None:
        if event.execution_id == execution_id:
            put(event)
        elif isinstance(event, ExecutionUpdated):
            if event.execution_id not in followed:
                if event.started_by not in followed:
                    return
                followed.add(event.execution_id)
            put(event)

    return listener


@dataclass(slots=True)
class _Done:
    result: Any
    error: BaseException | None


@dataclass(slots=True)
class Outcome:
    """How following ended: the runner's result (or error), and whether it was interrupted or timed out."""

    result: Any = None
    error: BaseException | None = None
    finished: bool = False
    interrupted: bool = False
    timed_out: bool = False


class LiveRun:
    """Drain one execution's events into a view model (and a display, when there is one)."""

    def __init__(self, model: ViewModel, view: Any | None = None, *, kill: Callable[[], None] | None = None,
                 timeout: float | None = None, clock: Callable[[], float] = time.monotonic,
                 max_rate: float = MAX_RATE, tick: float = TICK) -> None:
        self.model = model
        self.view = view
        self.kill = kill
        self.timeout = timeout
        self.clock = clock
        self.min_interval = 1.0 / max_rate
        self.tick = tick
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.waiting = threading.Event()   # set once wait() has started (a Ctrl-C is handled from then on)

    # ---------------------------------------------------------------- producers (any thread)

    def put(self, event: Any) -> None:
        """Hand over an engine event (ExecutionUpdated, LogsAppended) or a Kestra execution document."""
        self.queue.put(event)

    def put_logs(self, entries: Any) -> None:
        """Hand over log entries (LogEntry objects or Kestra LogEntry JSON)."""
        self.queue.put(LogsAppended("", tuple(entries)))

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """The runner is done: its result, or the error it ended with."""
        self.queue.put(_Done(result, error))

    # ------------------------------------------------------------------ consumer (main thread)

    def wait(self) -> Outcome:
        """Apply events until the runner finishes; push the view throttled; return how it ended."""
        outcome = Outcome()
        clock = self.clock
        deadline = None if self.timeout is None else clock() + self.timeout
        give_up: float | None = None          # after a kill: stop waiting at this time
        last_push = float("-inf")
        dirty = False
        self.waiting.set()
        while True:
            try:
                now = clock()
                wait = MAX_WAIT
                if dirty:
                    wait = min(wait, last_push + self.min_interval - now)
                elif self.view is not None and self.model.running():
                    wait = min(wait, last_push + self.tick - now)
                if deadline is not None and not outcome.timed_out:
                    wait = min(wait, deadline - now)
                if give_up is not None:
                    wait = min(wait, give_up - now)
                try:
                    items = [self.queue.get(timeout=max(wait, 0.0))]
                except queue.Empty:
                    items = []
                while True:  # take whatever else is there: only the latest document matters
                    try:
                        items.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                latest = {item.execution_id: item for item in items if isinstance(item, ExecutionUpdated)}
                for item in items:
                    if isinstance(item, ExecutionUpdated) and latest[item.execution_id] is not item:
                        continue   # a later document of the same execution came with it: only that one counts
                    if isinstance(item, _Done):
                        outcome.finished = True
                        outcome.result, outcome.error = item.result, item.error
                    elif isinstance(item, ExecutionUpdated):
                        self.model.update(item.document)
                        dirty = True
                    elif isinstance(item, LogsAppended):
                        self.model.add_logs(item.entries)
                        dirty = True
                    elif isinstance(item, Mapping):
                        self.model.update(item)
                        dirty = True
                if outcome.finished:
                    break
                now = clock()
                if deadline is not None and now >= deadline and not outcome.timed_out:
                    outcome.timed_out = True
                    give_up = now + KILL_GRACE
                    self._kill()
                if give_up is not None and now >= give_up:
                    break
                if self.view is not None and now - last_push >= self.min_interval and (
                        dirty or (self.model.running() and now - last_push >= self.tick)):
                    self.view.push(self.model)
                    last_push = now
                    dirty = False
            except KeyboardInterrupt:
                if outcome.interrupted:  # a second Ctrl-C: stop waiting for the kill to land
                    break
                outcome.interrupted = True
                give_up = clock() + KILL_GRACE
                self._kill()
        if self.view is not None and self.model.doc is not None:
            self.view.push(self.model)
        return outcome

    def _kill(self) -> None:
        if self.kill is not None:
            try:
                self.kill()
            except Exception:  # noqa: BLE001, S110 - it may have ended meanwhile; the wait tells
                pass


__all__ = ["KILL_GRACE", "MAX_RATE", "TICK", "LiveRun", "Outcome", "family"]
