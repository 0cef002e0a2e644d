"""Kestra's state types, their predicates, and a State with its append-only history."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum


class StateType(str, Enum):
    """The 17 state names of Kestra 1.x, in Kestra's enum order."""

    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    QUEUED = "QUEUED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"
    BREAKPOINT = "BREAKPOINT"
    RESUBMITTED = "RESUBMITTED"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)

    def is_terminated(self) -> bool:
        return self in TERMINATED

    def is_terminated_no_fail(self) -> bool:
        return self in TERMINATED_NO_FAIL

    def is_running(self) -> bool:
        return self in RUNNING

    def is_created(self) -> bool:
        return self in CREATED

    def is_paused(self) -> bool:
        return self is StateType.PAUSED

    def is_retrying(self) -> bool:
        return self in RETRYING

    def is_failed(self) -> bool:
        return self is StateType.FAILED

    def is_breakpoint(self) -> bool:
        return self is StateType.BREAKPOINT

    def is_restartable(self) -> bool:
        return self in (StateType.FAILED, StateType.PAUSED)


TERMINATED = frozenset({
    StateType.FAILED, StateType.WARNING, StateType.SUCCESS, StateType.KILLED,
    StateType.CANCELLED, StateType.RETRIED, StateType.SKIPPED, StateType.RESUBMITTED,
})
TERMINATED_NO_FAIL = frozenset({
    StateType.WARNING, StateType.SUCCESS, StateType.RETRIED, StateType.SKIPPED, StateType.RESUBMITTED,
})
RUNNING = frozenset({StateType.RUNNING, StateType.KILLING})
CREATED = frozenset({StateType.CREATED, StateType.RESTARTED})
RETRYING = frozenset({StateType.RETRYING, StateType.RETRIED})


def utcnow() -> datetime:
    """Now, in UTC, at microsecond precision (what we store and print)."""
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class History:
    state: StateType
    date: datetime


@dataclass(slots=True, eq=False)
class State:
    """A state and its history; compares equal to its current state's name (`ex.state == "SUCCESS"`)."""

    current: StateType = StateType.CREATED
    histories: list[History] = field(default_factory=list)

    @classmethod
    def new(cls, state: StateType = StateType.CREATED, at: datetime | None = None) -> State:
        return cls(state, [History(state, at or utcnow())])

    def transition(self, state: StateType, at: datetime | None = None) -> bool:
        """Move to `state`, appending to the history; a no-op (False) when already there."""
        if state is self.current and self.histories:
            return False
        self.current = state
        self.histories.append(History(state, at or utcnow()))
        return True

    @property
    def start_date(self) -> datetime | None:
        return self.histories[0].date if self.histories else None

    @property
    def end_date(self) -> datetime | None:
        """The last transition's date, only once terminated or while PAUSED (Kestra's rule)."""
        if self.histories and (self.current in TERMINATED or self.current is StateType.PAUSED):
            return self.histories[-1].date
        return None

    @property
    def duration(self) -> timedelta | None:
        end = self.end_date
        return None if end is None else end - self.histories[0].date

    def is_terminated(self) -> bool:
        return self.current in TERMINATED

    def copy(self) -> State:
        return State(self.current, list(self.histories))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, State):
            return self.current is other.current and self.histories == other.histories
        if isinstance(other, str):
            return self.current.value == other
        return NotImplemented

    def __hash__(self) -> int:  # equal to its name, so it hashes like it
        return hash(self.current.value)

    def __str__(self) -> str:
        return self.current.value

    def __repr__(self) -> str:
        return f"State({self.current.value!r}, {len(self.histories)} transitions)"
