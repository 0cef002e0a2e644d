"""The scheduler: fires flows' Schedule and Flow triggers (Webhook triggers fire per request, in api.webhook).

One scheduler runs in each server process (the standalone server, the Jupyter server extension), but
only the one holding the OS lock `<home>/scheduler.lock` evaluates triggers; the others try to take the
lock over on every poll, which succeeds once the holder's process is gone (the OS releases its lock even
on SIGKILL). On top of that, every firing is a compare-and-set in the store (a Schedule's state version,
a Flow trigger's mark per ended execution), so a date or an ended execution fires at most once even if two
schedulers ever overlapped. A process that dies between that write and the start of the execution loses
that one firing (at-most-once), never doubles it.

Time comes from `clock` (a callable returning an aware datetime), so tests drive the scheduler with a
fake clock: `await scheduler.tick(now)` evaluates every trigger at `now`. The real loop (`start()`)
calls `tick()` when the next Schedule date is due, when an execution of this process ends, and at least
every `poll` seconds (flow changes, executions ended in other processes, taking the lock over).

Kestra's rules kept here:
- Schedule (and ScheduleOnDates, over its list of dates, from its first one): a new trigger fires at the first
  cron date after now (missed dates before its creation are
  not fired); `backfill.start` fires every date from `start` (to `end`, inclusive) first. Dates missed
  while no scheduler ran are recovered per `recoverMissedSchedules` (ALL by default, LAST, or NONE);
  `lateMaximumDelay` skips a date fired later than that. The execution's `trigger.variables` are
  `date`, `next`, `previous` as ISO date-times in the trigger's `timezone`, seconds precision; it gets
  `scheduleDate` and the label `system.from: trigger`; `inputs` are rendered with `trigger`.
- Flow: fires when another flow's execution ends (terminal state, nothing left to run) in one of its
  `states` (default: the terminal ones; a non-terminal one such as PAUSED fires on each transition into
  it made by this process) and every plain condition holds; with MultipleConditions or
  `preconditions` (flows and `where` filters), once every one of their conditions has held within one
  time window (engine.conditions; the window's results live in the trigger's stored state). Variables:
  executionId, namespace, flowId, flowRevision, state, outputs. A flow's execution never triggers the
  same flow.
- Disabled triggers and disabled or deleted flows do not fire; their state is forgotten, so re-enabling
  a Schedule starts from the next date after that moment. A trigger with `stopAfter` stops for good (until
  its flow is redeployed with another schedule, or it is disabled and enabled again) once one of its
  executions ends in one of those states; a stopped Webhook answers 404 like a disabled one. A trigger
  disabled by a Toggle task (tasks.trigger) keeps its state and does not fire until enabled again.
"""
from __future__ import annotations

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no leader lock, the store's compare-and-set still holds
    fcntl = None  # type: ignore[assignment]

import asyncio
import bisect
import logging
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import KestraNbError
from ..model.execution import Execution, ExecutionTrigger, Label
from ..model.flow import Flow
from ..model.jsonfmt import parse_duration, parse_instant
from ..model.state import StateType, utcnow
from ..parsing import parse_flow
from ..parsing.triggers import FLOW, HTTP_TRIGGER, MULTIPLE, SCHEDULE, SCHEDULE_ON_DATES, WEBHOOK, zone
from ..store.base import TriggerState
from ..tasks.trigger import toggled_off
from .conditions import ConditionContext, Multiple, doc_labels, holds, multiples, record
from . import polling
from .events import Event, ExecutionUpdated

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
POLL = 1.0                         # seconds between looks at flows, other processes' executions, the lock
ENDED_LAG = timedelta(seconds=60)  # ended executions are re-read this far back (commits land out of order)
MAX_FIRES_PER_TICK = 10_000        # a backfill over years fires over several ticks, the loop stays responsive
MARKS_KEPT = timedelta(days=2)
FROM_LABEL = "system.from"


@dataclass(slots=True)
class Trigger:
    """One enabled trigger of a live, enabled flow."""

    flow: Flow
    revision: int
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    @property
    def type(self) -> str:
        return str(self.spec["type"])

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.flow.namespace, self.flow.id, self.id)


def java_iso(dt: datetime) -> str:
    """A zoned date-time as Jackson writes a ZonedDateTime: `2024-01-01T00:00:00Z`, `…T01:00:00+01:00`."""
    text = dt.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class Cron:
    """A Schedule's cron in its time zone: the dates after and before an instant (seconds precision)."""

    def __init__(self, expression: str, tz: ZoneInfo, with_seconds: bool = False) -> None:
        text = expression.strip()
        if with_seconds and not text.startswith("@"):
            fields = text.split()
            text = " ".join(fields[1:] + fields[:1])   # croniter takes seconds last
        self.text = text
        self.tz = tz

    def after(self, dt: datetime) -> datetime:
        """The first date strictly after `dt`."""
        from croniter import croniter

        return croniter(self.text, dt.astimezone(self.tz)).get_next(datetime).replace(microsecond=0)

    def before(self, dt: datetime) -> datetime:
        """The last date strictly before `dt`."""
        from croniter import croniter

        return croniter(self.text, dt.astimezone(self.tz)).get_prev(datetime).replace(microsecond=0)

    def first(self, now: datetime) -> datetime:
        """Where a new trigger starts: the first date after `now` (dates before its creation are not fired)."""
        return self.after(now)


class Dates:
    """A ScheduleOnDates' dates in its time zone, with the interface of `Cron`."""

    def __init__(self, dates: list[datetime], tz: ZoneInfo) -> None:
        self.dates = sorted(d.replace(microsecond=0) for d in dates)
        self.tz = tz

    def after(self, dt: datetime) -> datetime | None:
        """The first date strictly after `dt` (None after the last)."""
        i = bisect.bisect_right(self.dates, dt)
        return self.dates[i] if i < len(self.dates) else None

    def before(self, dt: datetime) -> datetime | None:
        """The last date strictly before `dt` (None before the first)."""
        i = bisect.bisect_left(self.dates, dt)
        return self.dates[i - 1] if i else None

    def first(self, now: datetime) -> datetime | None:
        """Where a new trigger starts: its first date, even if past (Kestra's ScheduleOnDates starts there,
        and `recoverMissedSchedules` says which past ones fire)."""
        return self.dates[0] if self.dates else None


def schedule_cron(spec: Mapping[str, Any]) -> Cron | Dates:
    """The dates of a (validated) Schedule or ScheduleOnDates trigger."""
    tz = zone(str(spec.get("timezone") or "UTC")) or ZoneInfo("UTC")
    if spec.get("type") == SCHEDULE_ON_DATES:
        return Dates([parse_instant(str(d)) for d in spec.get("dates") or ()], tz)
    return Cron(str(spec["cron"]), tz, bool(spec.get("withSeconds")))


def _signature(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What a Schedule state was computed from: a change restarts it (as redeploying does in Kestra)."""
    out = {"cron": spec.get("cron"), "timezone": spec.get("timezone"), "withSeconds": bool(spec.get("withSeconds")),
           "backfill": spec.get("backfill")}
    if spec.get("dates") is not None:
        out["dates"] = spec["dates"]
    return out


class LeaderLock:
    """The OS lock that makes one process per home the scheduler; released by the OS if the process dies."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: Any = None

    @property
    def held(self) -> bool:
        return self.path is None or fcntl is None or self._handle is not None

    def acquire(self) -> bool:
        """Take the lock if free (non-blocking); True if this process holds it."""
        if self.held:
            return True
        assert self.path is not None
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as this process leads
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        """Let another process take over."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Scheduler:
    """Evaluates the Schedule and Flow triggers of every flow in the store, on `clock`'s time."""

    def __init__(self, engine: Any, *, clock: Clock | None = None, lock_path: str | os.PathLike[str] | None = None,
                 poll: float = POLL, tenant: str = "main") -> None:
        self.engine = engine
        self.store = engine.store
        self.clock: Clock = clock or utcnow
        self.poll = poll
        self.tenant = tenant
        if lock_path is None and getattr(self.store, "path", None) is not None:
            lock_path = Path(self.store.path).parent / "scheduler.lock"
        self.lock = LeaderLock(None if lock_path is None else Path(lock_path))
        self.schedules: list[Trigger] = []
        self.flow_triggers: list[Trigger] = []
        self.polls: list[Trigger] = []       # the polling HTTP triggers
        self._polling: dict[tuple[str, str, str], asyncio.Task[None]] = {}   # their requests in flight
        self.stoppable: list[Trigger] = []   # triggers with `stopAfter`, of every type
        self._live: set[tuple[str, str, str]] = set()   # every enabled trigger of a live flow (Webhooks too)
        self._transitions: set[str] = set()   # non-terminal states some Flow trigger listens to (RUNNING, PAUSED…)
        self._flows: dict[tuple[str, str], tuple[int, Flow | None]] = {}
        self._ended: deque[tuple[dict[str, Any], bool]] = deque()   # (document, finished) of this process
        self._seen: OrderedDict[str, None] = OrderedDict()   # ended executions already looked at
        self._cursor: datetime | None = None
        self._version: int | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._last_prune: datetime | None = None
        self.errors: list[str] = []     # the latest firing problems (bad inputs…), also logged

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run the loop on the running asyncio loop (the engine's)."""
        self._subscribe()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kestra_nb-scheduler")

    def _subscribe(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.engine.subscribe(None, self._on_event)

    async def stop(self) -> None:
        """Stop the loop and let another process take the lead."""
        task, self._task = self._task, None
        for polling_task in list(self._polling.values()):
            polling_task.cancel()
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.lock.release()

    @property
    def leader(self) -> bool:
        """Whether this process evaluates triggers now."""
        return self.lock.held

    def _on_event(self, event: Event) -> None:
        if not isinstance(event, ExecutionUpdated):
            return
        if (event.finished and (self.flow_triggers or self.stoppable)) or (not event.finished and self._transitions):
            # built now; one commit may hold several transitions (inline tasks): its histories list them all
            self._ended.append((event.document, event.finished))
            if self._wake is not None:
                self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            started: list[str] = []
            try:
                started = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken flow or store hiccup must not stop the scheduler
                log.exception("kestra_nb: scheduler tick failed")
            delay = self.poll
            due = self.next_due() if self.leader else None
            if due is not None:
                wait = (due - self.clock()).total_seconds()
                # a date still due after a tick that fired nothing is stuck (reported): no busy loop on it
                delay = min(delay, wait) if wait > 0 else (0.0 if started else delay)
            self._wake.clear()
            if delay > 0 and not self._ended:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass

    def next_due(self) -> datetime | None:
        """The earliest next date of the Schedules and polling triggers (None without any)."""
        dates = []
        for trigger in [*self.schedules, *self.polls]:
            state = self.store.get_trigger_state(*trigger.key, tenant=self.tenant)
            if state is not None and state.next_date is not None:
                dates.append(state.next_date)
        return min(dates) if dates else None

    # ------------------------------------------------------------------------------------------ tick

    async def tick(self, now: datetime | None = None) -> list[str]:
        """Evaluate every trigger at `now` (default: the clock); returns the ids of the executions started."""
        self._subscribe()
        now = now or self.clock()
        self.refresh()
        if not self.lock.acquire():
            self._ended.clear()   # the leader's process sees them through the store
            return []
        started: list[str] = []
        off = self._forget_stale()
        ended = self._collect_ended(now) if self.flow_triggers or self.stoppable else []
        self._ended.clear()
        for doc in ended:
            self._stop_after(doc)
        for trigger in list(self.schedules):
            if trigger.key in off or self._stopped(trigger):
                continue
            try:
                started.extend(await self._schedule(trigger, now))
            except Exception as exc:  # noqa: BLE001 - one bad trigger must not stop the others
                self._problem(trigger, f"Schedule evaluation failed: {exc}")
        if self.flow_triggers:
            started.extend(await self._flow_triggers(ended, now, off))
        for trigger in self.polls:
            if trigger.key not in off and not self._stopped(trigger) and trigger.key not in self._polling:
                self._start_poll(trigger, now)
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            self._last_prune = now
            self.store.prune_trigger_marks(utcnow() - MARKS_KEPT, tenant=self.tenant)
        return started

    def refresh(self) -> None:
        """Read the live flows (parsing only the revisions not seen yet) and collect their enabled triggers."""
        records = self.store.list_flows(tenant=self.tenant)
        flows: dict[tuple[str, str], tuple[int, Flow | None]] = {}
        for record in records:
            key = (record.namespace, record.id)
            known = self._flows.get(key)
            if known is not None and known[0] == record.revision:
                flows[key] = known
                continue
            try:
                flow: Flow | None = parse_flow(record.source)
            except KestraNbError as exc:
                flow = None   # an invalid stored flow has no triggers (said once per revision)
                first = str(exc).splitlines()[1:2] or [str(exc)]
                log.warning("kestra_nb: stored flow %s.%s (revision %s) is invalid, its triggers are skipped: %s",
                            record.namespace, record.id, record.revision, first[0].lstrip("- "))
            flows[key] = (record.revision, flow)
        self._flows = flows
        schedules, flow_triggers, stoppable, polls = [], [], [], []
        live: set[tuple[str, str, str]] = set()
        for revision, flow in flows.values():
            if flow is None or flow.disabled or not flow.triggers:
                continue
            for spec in flow.triggers:
                if spec.get("disabled") is True:
                    continue
                trigger = Trigger(flow, revision, spec)
                live.add(trigger.key)
                if spec.get("type") in (SCHEDULE, SCHEDULE_ON_DATES):
                    schedules.append(trigger)
                elif spec.get("type") == FLOW:
                    flow_triggers.append(trigger)
                elif spec.get("type") == HTTP_TRIGGER:
                    polls.append(trigger)
                if spec.get("stopAfter") and spec.get("type") in (SCHEDULE, SCHEDULE_ON_DATES, FLOW, WEBHOOK,
                                                                  HTTP_TRIGGER):
                    stoppable.append(trigger)
        self.schedules, self.flow_triggers, self.stoppable, self.polls = schedules, flow_triggers, stoppable, polls
        self._live = live
        self._transitions = {state for t in flow_triggers for state in t.spec.get("states") or ()
                             if state not in _TERMINAL}

    def _forget_stale(self) -> set[tuple[str, str, str]]:
        """Drop the states of triggers that are gone (deleted or disabled flows and triggers); return the keys
        of the live ones a Toggle disabled."""
        live = self._live
        off = set()
        for state in self.store.list_trigger_states(tenant=self.tenant):
            key = (state.namespace, state.flow_id, state.trigger_id)
            if key not in live:
                self.store.delete_trigger_state(*key, tenant=self.tenant)
            elif toggled_off(state):
                off.add(key)
        return off

    def _problem(self, trigger: Trigger, message: str) -> None:
        text = f"{trigger.flow.namespace}.{trigger.flow.id} trigger '{trigger.id}': {message}"
        log.warning("kestra_nb: %s", text)
        self.errors.append(text)
        del self.errors[:-100]

    # -------------------------------------------------------------------------------------- Schedule

    async def _schedule(self, trigger: Trigger, now: datetime) -> list[str]:
        spec = trigger.spec
        cron = schedule_cron(spec)
        signature = _signature(spec)
        state = self.store.get_trigger_state(*trigger.key, tenant=self.tenant)
        if state is None or (state.data or {}).get("signature") != signature:
            data: dict[str, Any] = {"signature": signature}
            backfill = spec.get("backfill")
            if isinstance(backfill, dict) and backfill.get("start"):
                start = parse_instant(str(backfill["start"]))
                first = cron.after(start - timedelta(seconds=1))
                data["backfill"] = {"end": backfill.get("end")}
            else:
                first = cron.first(now)
            fresh = TriggerState(*trigger.key, next_date=first, data=data, version=state.version if state else 0,
                                 tenant_id=self.tenant)
            state = self.store.put_trigger_state(fresh)
            if state is None:
                return []   # another scheduler initialised it first
        started: list[str] = []
        late = spec.get("lateMaximumDelay")
        late_max = timedelta(seconds=parse_duration(str(late)).total_seconds()) if late else None
        recover = str(spec.get("recoverMissedSchedules") or "ALL")
        for _ in range(MAX_FIRES_PER_TICK):
            date = state.next_date
            if date is None or date > now:
                break
            data = dict(state.data or {})
            backfill = data.get("backfill")
            nxt = cron.after(date)
            fire = True
            if backfill is not None:
                end = backfill.get("end")
                if end and date > parse_instant(str(end)):
                    # the backfill is over: on with the regular schedule from now
                    data.pop("backfill")
                    state = self.store.put_trigger_state(replace(state, next_date=cron.after(now), data=data))
                    if state is None:
                        return started
                    continue
            else:
                if nxt is not None and nxt <= now:   # missed dates (no scheduler ran): recoverMissedSchedules
                    if recover == "LAST":
                        fire = False
                    elif recover == "NONE":
                        fire = False
                        nxt = cron.after(now)
                if fire and late_max is not None and now - date > late_max:
                    fire = False
            claimed = self.store.put_trigger_state(replace(state, next_date=nxt, last_date=date if fire else
                                                           state.last_date, data=data))
            if claimed is None:
                return started   # another scheduler fired it
            state = claimed
            if fire:
                ex_id = await self._fire_schedule(trigger, cron, date)
                if ex_id:
                    started.append(ex_id)
        return started

    async def _fire_schedule(self, trigger: Trigger, cron: Cron | Dates, date: datetime) -> str | None:
        variables = {"date": java_iso(date.astimezone(cron.tz))}
        for key, other in (("next", cron.after(date)), ("previous", cron.before(date))):
            if other is not None:   # a ScheduleOnDates' first and last dates have no previous or next
                variables[key] = java_iso(other.astimezone(cron.tz))
        ctx = ConditionContext(trigger.flow.namespace, trigger.flow.id, self._renderer(trigger, variables))
        if not all(self._holds(trigger, c, ctx) for c in trigger.spec.get("conditions") or ()):
            return None   # a date the conditions exclude is skipped, as Kestra does
        return await self._start(trigger, variables, schedule_date=date)

    # ------------------------------------------------------------------------------------ HTTP polling

    def _start_poll(self, trigger: Trigger, now: datetime) -> None:
        """If the trigger is due, claim its next date (compare-and-set: one scheduler polls) and send its
        request in the background: the tick never waits on a remote server."""
        state = self.store.get_trigger_state(*trigger.key, tenant=self.tenant)
        if not polling.due(state, now):
            return
        base = state or TriggerState(*trigger.key, tenant_id=self.tenant)
        claimed = self.store.put_trigger_state(replace(base, next_date=now + polling.interval(trigger.spec),
                                                       last_date=now))
        if claimed is None:
            return   # another scheduler polls it
        task = asyncio.get_running_loop().create_task(self._poll(trigger), name=f"kestra_nb-poll-{trigger.id}")
        self._polling[trigger.key] = task
        task.add_done_callback(lambda _: self._polling.pop(trigger.key, None))

    async def polls_done(self) -> None:
        """Until the HTTP requests in flight have been answered (and their executions started)."""
        while self._polling:
            await asyncio.gather(*self._polling.values(), return_exceptions=True)

    async def _poll(self, trigger: Trigger) -> None:
        try:
            output = await polling.poll(self.engine, trigger, self._context(trigger, {}))
            if output is None:
                return
            ctx = ConditionContext(trigger.flow.namespace, trigger.flow.id, self._renderer(trigger, output))
            if all(self._holds(trigger, c, ctx) for c in trigger.spec.get("conditions") or ()):
                await self._start(trigger, output)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported; the next interval tries again
            self._problem(trigger, f"HTTP trigger evaluation failed: {getattr(exc, 'message', None) or exc}")

    # ------------------------------------------------------------------------------------------ Flow

    def _collect_ended(self, now: datetime) -> list[dict[str, Any]]:
        """Executions ended since the last tick: this process's (events), then other processes' (store)."""
        docs: list[dict[str, Any]] = []
        while self._ended:
            doc, finished = self._ended.popleft()
            for snapshot in self._transitions_of(doc, finished):
                key = transition_key(snapshot)
                if key not in self._seen:
                    docs.append(snapshot)
                    self._remember(key)
        docs.extend(self._ended_elsewhere(now))
        return docs

    def _transitions_of(self, doc: dict[str, Any], finished: bool) -> list[dict[str, Any]]:
        """The document as of each transition into a listened non-terminal state, then itself if it ended
        (`finished`: terminal with nothing left to run)."""
        out = []
        if self._transitions:
            histories = doc["state"].get("histories") or []
            for i in range(1, len(histories)):
                state = histories[i].get("state")
                if state in self._transitions:
                    out.append({**doc, "state": {**doc["state"], "current": state, "histories": histories[:i + 1]}})
        if finished:
            out.append(doc)
        return out

    # ------------------------------------------------------------------------------------- stopAfter

    def _stop_after(self, doc: Mapping[str, Any]) -> None:
        """An execution of a trigger with `stopAfter` ended in one of those states: the trigger stops."""
        fired_by = doc.get("trigger") or {}
        for trigger in self.stoppable:
            if ((doc["namespace"], doc["flowId"], fired_by.get("id")) == trigger.key
                    and doc["state"]["current"] in trigger.spec["stopAfter"]):
                for _ in range(5):   # compare-and-set retries
                    state = self.store.get_trigger_state(*trigger.key, tenant=self.tenant) or TriggerState(
                        *trigger.key, tenant_id=self.tenant)
                    data = {**(state.data or {}), "stopped": doc["state"]["current"]}
                    if self.store.put_trigger_state(replace(state, data=data)) is not None:
                        break

    def _stopped(self, trigger: Trigger) -> bool:
        return bool(trigger.spec.get("stopAfter")) and is_stopped(self.store, trigger.key, self.tenant)

    async def _flow_triggers(self, docs: list[dict[str, Any]], now: datetime,
                             off: set[tuple[str, str, str]]) -> list[str]:
        started: list[str] = []
        for doc in docs:
            for trigger in list(self.flow_triggers):
                if trigger.key in off:
                    continue
                try:
                    ex_id = await self._flow_trigger(trigger, doc, now)
                except Exception as exc:  # noqa: BLE001
                    self._problem(trigger, f"Flow trigger evaluation failed: {exc}")
                    continue
                if ex_id:
                    started.append(ex_id)
        return started

    def _remember(self, execution_id: str) -> None:
        self._seen[execution_id] = None
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)

    def _ended_elsewhere(self, now: datetime) -> list[dict[str, Any]]:
        """Executions other processes ended since the last look (only when the store changed)."""
        version = self.store.data_version()
        if self._cursor is None:
            self._cursor = now - ENDED_LAG
            self._version = version
            return []
        if version == self._version:
            return []
        self._version = version
        from ..api.service import (
            is_finished,  # the wait/follow stop rule, on a stored document
        )

        out = []
        for ended in self.store.ended_executions(self._cursor - ENDED_LAG, tenant=self.tenant):
            self._cursor = max(self._cursor, ended.end_date)
            if ended.id in self._seen or not ended.state.is_terminated():
                continue
            doc = self.store.get_execution_document(ended.id, tenant=self.tenant)
            if doc is None or not is_finished(doc):
                continue   # still running afterExecution tasks: looked at again next time
            self._remember(ended.id)
            out.append(doc)
        return out

    async def _flow_trigger(self, trigger: Trigger, doc: dict[str, Any], now: datetime) -> str | None:
        """Kestra's FlowTriggerService: states, plain conditions, then multiple conditions and preconditions."""
        spec = trigger.spec
        if (doc["namespace"], doc["flowId"]) == (trigger.flow.namespace, trigger.flow.id) or self._stopped(trigger):
            return None
        state = doc["state"]["current"]
        if state not in (spec.get("states") or _TERMINAL):
            return None
        variables: dict[str, Any] = {"executionId": doc["id"], "namespace": doc["namespace"], "flowId": doc["flowId"],
                                     "flowRevision": doc.get("flowRevision"), "state": state}
        if doc.get("outputs"):
            variables["outputs"] = doc["outputs"]
        ctx = ConditionContext(trigger.flow.namespace, trigger.flow.id, self._renderer(trigger, variables, doc), doc)
        for condition in spec.get("conditions") or ():
            if condition.get("type") != MULTIPLE and not self._holds(trigger, condition, ctx):
                return None
        # once per ended execution and trigger: a window never counts the same execution twice
        if not self.store.claim_trigger_mark(f"flow:{trigger.flow.namespace}/{trigger.flow.id}/{trigger.id}:"
                                             f"{transition_key(doc)}", tenant=self.tenant):
            return None
        windows = multiples(spec)
        if windows and not self._windows(trigger, windows, ctx, now):
            return None
        return await self._start(trigger, variables, upstream=doc)

    def _renderer(self, trigger: Trigger, variables: Mapping[str, Any],
                  doc: Mapping[str, Any] | None = None) -> Callable[[str], str]:
        """Render an expression of a condition: the listening flow, the trigger's variables and, for a Flow
        trigger, the ended execution, its labels and outputs."""
        context = self._context(trigger, variables, doc)
        return lambda text: self.engine.renderer.render_string(text, context)

    def _context(self, trigger: Trigger, variables: Mapping[str, Any],
                 doc: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The variables a trigger's expressions see (see `_renderer`)."""
        context: dict[str, Any] = {"flow": {"id": trigger.flow.id, "namespace": trigger.flow.namespace,
                                            "revision": trigger.revision, "tenantId": self.tenant},
                                   "trigger": dict(variables), "vars": trigger.flow.variables}
        if doc is not None:
            context.update({"execution": {"id": doc["id"], "state": doc["state"]["current"],
                                          "outputs": doc.get("outputs") or {}},
                            "outputs": doc.get("outputs") or {}, "labels": doc_labels(doc)})
        return context

    def _holds(self, trigger: Trigger, condition: Mapping[str, Any], ctx: ConditionContext) -> bool:
        """A condition's truth; one that cannot be evaluated (a rendering error) does not hold, and is reported."""
        try:
            return holds(condition, ctx)
        except Exception as exc:  # noqa: BLE001
            self._problem(trigger, f"condition failed: {exc}")
            return False

    def _windows(self, trigger: Trigger, windows: list[Multiple], ctx: ConditionContext, now: datetime) -> bool:
        """Record what this execution satisfies in each window (stored); True once every window is complete."""
        matched = {m.id: [name for name, c in m.conditions.items() if self._holds(trigger, c, ctx)]
                   for m in windows}
        for _ in range(5):   # compare-and-set retries
            stored = self.store.get_trigger_state(*trigger.key, tenant=self.tenant)
            base = stored or TriggerState(*trigger.key, tenant_id=self.tenant)
            data = dict(base.data or {})
            kept = dict(data.get("windows") or {})
            complete = True
            for m in windows:
                window, done = record(kept, m, matched[m.id], now)
                complete = complete and done
                if window is None:
                    kept.pop(m.id, None)
                else:
                    kept[m.id] = window
            live = {m.id for m in windows}
            data["windows"] = {k: v for k, v in kept.items() if k in live}
            if self.store.put_trigger_state(replace(base, data=data)) is not None:
                return complete
        self._problem(trigger, "its windows changed concurrently five times: this execution is not counted")
        return False

    # ----------------------------------------------------------------------------------------- start

    async def _start(self, trigger: Trigger, variables: dict[str, Any], *, schedule_date: datetime | None = None,
                     upstream: Mapping[str, Any] | None = None) -> str | None:
        """Create and start the trigger's execution; a problem (bad inputs) is reported, not raised."""
        try:
            ex = build_execution(self.engine, trigger.flow, trigger.revision, trigger.spec, variables, self.tenant,
                                 upstream)
        except KestraNbError as exc:
            self._problem(trigger, f"cannot create the execution: {exc}")
            return None
        if schedule_date is not None:
            ex.schedule_date = schedule_date.astimezone(timezone.utc)
        await self.engine.start(trigger.flow, ex)
        return ex.id


_TERMINAL = tuple(s.value for s in StateType if s.is_terminated())


def transition_key(doc: Mapping[str, Any]) -> str:
    """What a Flow trigger fires at most once for: an ended execution, or one transition of a running one
    (Kestra evaluates Flow triggers on every state change: a flow paused twice is PAUSED twice)."""
    state = doc["state"]
    if StateType(state["current"]).is_terminated():
        return str(doc["id"])
    return f"{doc['id']}@{len(state.get('histories') or ())}"


def task_outputs(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An execution document's task outputs as its `outputs` variable: `<task>`, or `<task>.<loop value>`."""
    out: dict[str, Any] = {}
    for run in doc.get("taskRunList") or ():
        outputs = run.get("outputs")
        if not outputs:
            continue
        if run.get("value") is None:
            out[str(run["taskId"])] = outputs
        else:
            nested = out.setdefault(str(run["taskId"]), {})
            if isinstance(nested, dict):
                nested[str(run["value"])] = outputs
    return out


def is_stopped(store: Any, key: tuple[str, str, str], tenant: str = "main") -> bool:
    """Whether a trigger with `stopAfter` has stopped (one of its executions ended in those states)."""
    state = store.get_trigger_state(*key, tenant=tenant)
    return state is not None and bool((state.data or {}).get("stopped"))


def is_off(store: Any, key: tuple[str, str, str], tenant: str = "main") -> bool:
    """Whether a trigger does not fire for now: a Toggle disabled it, or `stopAfter` stopped it."""
    state = store.get_trigger_state(*key, tenant=tenant)
    return state is not None and (toggled_off(state) or bool((state.data or {}).get("stopped")))


def build_execution(engine: Any, flow: Flow, revision: int, spec: Mapping[str, Any], variables: dict[str, Any],
                    tenant: str = "main", upstream: Mapping[str, Any] | None = None) -> Execution:
    """A CREATED execution of `flow` for a trigger: rendered `inputs`, `trigger` variables, `system.from`.

    `upstream` is the execution document a Flow trigger fires on: its task outputs are `outputs` and its
    labels `labels` when the inputs are rendered, as in Kestra (`from-parent: "{{ outputs.only.value }}"`)."""
    inputs = spec.get("inputs") or {}
    if inputs:
        context = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": revision, "tenantId": tenant},
                   "trigger": variables, "vars": flow.variables}
        if upstream is not None:
            context.update({"outputs": task_outputs(upstream), "labels": doc_labels(upstream),
                            "execution": {"id": upstream["id"], "state": upstream["state"]["current"]}})
        inputs = engine.renderer.render_object(inputs, context)
    ex: Execution = engine.new_execution(flow, revision, inputs)
    ex.trigger = ExecutionTrigger(str(spec["id"]), str(spec["type"]), variables)
    ex.labels.insert(len(ex.labels) - 1 if ex.labels and ex.labels[-1].key == "system.correlationId"
                     else len(ex.labels), Label(FROM_LABEL, "trigger"))
    return ex


__all__ = ["Cron", "Dates", "LeaderLock", "Scheduler", "Trigger", "build_execution", "is_off", "is_stopped", "java_iso",
           "schedule_cron"]
