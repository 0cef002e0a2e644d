"""Shared by the trigger tests: an engine on the test's own loop with a scheduler on a fake clock."""
from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timezone
from typing import Any

from kestra_nb.engine import Engine
from kestra_nb.engine.scheduler import Scheduler
from kestra_nb.parsing import check_flow
from kestra_nb.store.memory import MemoryStore

UTC = timezone.utc


def aio(test: Any) -> Any:
    """Run an async test on a fresh loop (the engine lives on it)."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return run


class Rig:
    """An engine on the running loop with a scheduler whose clock is `now` (2024-01-01 10:30 UTC at first)."""

    def __init__(self, store: Any = None, now: datetime | None = None) -> None:
        self.engine = Engine(store or MemoryStore(), loop=asyncio.get_running_loop())
        self.now = now or datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
        self.scheduler = Scheduler(self.engine, clock=lambda: self.now)

    async def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Tick at `now` and return the documents of the executions started, once finished."""
        if now is not None:
            self.now = now
        ids = await self.scheduler.tick()
        return [(await self.engine.wait_async(i)).to_dict() for i in ids]

    async def run(self, source: str) -> dict[str, Any]:
        """Run a flow to its end; its document."""
        return (await self.engine.run_async(source)).to_dict()

    def close(self) -> None:
        self.engine.store.close()


def trigger_violation(triggers: str, path: str) -> str:
    """The message of the violation at `path` of a flow with these `triggers:` items (asserts there is one)."""
    source = ("id: f\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
              "    message: hi\ntriggers:\n" + triggers)
    result = check_flow(source)
    assert result.flow is None
    found = [v for v in result.violations if v.path == path]
    assert found, [(v.path, v.message) for v in result.violations]
    return found[0].message
