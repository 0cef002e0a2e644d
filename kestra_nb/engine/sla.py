"""Flow SLAs, as Kestra's SLAService evaluates them; the runner applies the violations.

MAX_DURATION is a deadline (`duration` after the execution's start): the runner keeps one timer per SLA,
set again from the stored start date on recovery, so an idle execution costs nothing until it expires.
EXECUTION_ASSERTION is rendered at each step of an execution that has not ended. Pure: no I/O, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from ..expressions import is_truthy
from ..model.execution import Execution
from ..model.flow import SLA, Flow
from ..model.jsonfmt import format_duration
from ..model.state import StateType

MAX_DURATION, EXECUTION_ASSERTION = "MAX_DURATION", "EXECUTION_ASSERTION"
# the state a violation gives the execution, per behavior (NONE: only its labels and a log line)
ENDS = {"FAIL": StateType.FAILED, "CANCEL": StateType.CANCELLED}


@dataclass(frozen=True, slots=True)
class Violation:
    sla: SLA
    reason: str


def deadlines(flow: Flow, ex: Execution) -> list[tuple[SLA, datetime]]:
    """The MAX_DURATION SLAs of a new execution and when each expires. A restarted execution has none:
    Kestra sets its SLA monitors when an execution is created, not when it is restarted."""
    if not flow.sla or any(h.state is StateType.RESTARTED for h in ex.state.histories):
        return []
    start = ex.state.start_date
    return [(sla, start + sla.duration) for sla in flow.sla if sla.type == MAX_DURATION and sla.duration is not None]


def max_duration_violation(sla: SLA, ex: Execution, now: datetime) -> Violation | None:
    """The violation of a MAX_DURATION SLA at `now`, if its duration has passed (MaxDurationSLA.evaluate)."""
    assert sla.duration is not None
    elapsed = now - ex.state.start_date
    if elapsed <= sla.duration:
        return None
    elapsed = timedelta(milliseconds=elapsed // timedelta(milliseconds=1))
    return Violation(sla, f"execution duration of {format_duration(elapsed)} exceed the maximum duration of "
                          f"{format_duration(sla.duration)}.")


def has_assertions(flow: Flow) -> bool:
    return any(sla.type == EXECUTION_ASSERTION for sla in flow.sla)


def assertion_violations(flow: Flow, render: Callable[[str], Any],
                         ignored: Callable[[SLA, str], None]) -> list[Violation]:
    """The EXECUTION_ASSERTION SLAs whose assertion renders false, in order; one that cannot be rendered is
    ignored (`ignored(sla, message)`), as Kestra does."""
    out: list[Violation] = []
    for sla in flow.sla:
        if sla.type != EXECUTION_ASSERTION or sla.assertion is None:
            continue
        try:
            holds = is_truthy(render(sla.assertion))
        except Exception as exc:  # noqa: BLE001 - any rendering error: Kestra logs it and ignores the SLA
            ignored(sla, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
            continue
        if not holds:
            out.append(Violation(sla, f"assertion is false: {sla.assertion}."))
    return out
