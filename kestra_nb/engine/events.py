"""The in-process event bus: the runner publishes every committed transition; waiters and views listen.

Listeners run on the engine's loop thread and must not block (hand the event to a queue, set a future).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Union

from ..model.execution import LogEntry
from ..model.jsonfmt import dumps
from ..model.state import StateType

log = logging.getLogger(__name__)


def started_by(ex: Any) -> str | None:
    """The execution that started execution `ex` (a Subflow's, a ForEachItem's parent), from its trigger."""
    variables = ex.trigger.variables if ex.trigger is not None else None
    parent = variables.get("executionId") if isinstance(variables, dict) else None
    return parent if isinstance(parent, str) else None


class ExecutionUpdated:
    """An execution's transition was committed; `document` is its Kestra JSON (read-only), built on first
    use from what the commit wrote (a listener that needs only `state` or `finished` costs nothing)."""

    __slots__ = ("execution_id", "state", "finished", "started_by", "_document", "_text")

    def __init__(self, execution_id: str, state: StateType,
                 document: dict[str, Any] | Callable[[], dict[str, Any]], finished: bool,
                 started_by: str | None = None) -> None:
        self.execution_id = execution_id
        self.state = state
        self.finished = finished      # terminal and nothing left to run: what wait=true waits for
        self.started_by = started_by  # the execution that started it (its trigger's `executionId`), if any
        self._document = document
        self._text: str | Callable[[], str] | None = getattr(document, "text", None)

    @property
    def document(self) -> dict[str, Any]:
        document = self._document
        if callable(document):
            document = self._document = document()
        return document

    @property
    def text(self) -> str:
        """The document's JSON text (joined from what the commit wrote when it can be, else encoded)."""
        text = self._text
        if not isinstance(text, str):
            text = self._text = text() if text is not None else dumps(self.document)
        return text

    def __repr__(self) -> str:
        return f"ExecutionUpdated({self.execution_id!r}, {self.state.value}, finished={self.finished})"


@dataclass(frozen=True, slots=True)
class LogsAppended:
    """Log entries of an execution were committed."""

    execution_id: str
    entries: tuple[LogEntry, ...]


@dataclass(frozen=True, slots=True)
class ExecutionUnstored:
    """An execution's transition could not be committed (the disk is full…): it was stopped, and ends FAILED
    once the store takes its last state; `message` says why in the user's terms (no server paths)."""

    execution_id: str
    message: str


Event = Union[ExecutionUpdated, LogsAppended, ExecutionUnstored]
Listener = Callable[[Event], None]


class EventBus:
    """Publish/subscribe per execution id (or every execution with `None`).

    Subscribers come and go from any thread (a server's handlers, a kernel's cell) while the engine thread
    publishes: the lists are only changed under a lock and replaced, never mutated, so a publish iterates a
    consistent snapshot without taking the lock.
    """

    def __init__(self) -> None:
        self._listeners: dict[str | None, tuple[Listener, ...]] = {}
        self._lock = threading.Lock()

    def subscribe(self, execution_id: str | None, listener: Listener) -> Callable[[], None]:
        """Call `listener` for each event of that execution (every execution if None); returns unsubscribe."""
        with self._lock:
            self._listeners[execution_id] = self._listeners.get(execution_id, ()) + (listener,)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(execution_id, ())
                if listener not in listeners:
                    return
                rest = list(listeners)
                rest.remove(listener)
                if rest:
                    self._listeners[execution_id] = tuple(rest)
                else:
                    del self._listeners[execution_id]

        return unsubscribe

    def listened(self, execution_id: str) -> bool:
        """Whether anyone would receive an event of that execution."""
        listeners = self._listeners
        return bool(listeners.get(execution_id) or listeners.get(None))

    def publish(self, event: Event) -> None:
        """Deliver an event to the listeners of its execution, then to the catch-all ones."""
        for key in (event.execution_id, None):
            for listener in self._listeners.get(key, ()):
                try:
                    listener(event)
                except Exception:  # one broken view must not break the engine
                    log.exception("kestra_nb: event listener failed")
