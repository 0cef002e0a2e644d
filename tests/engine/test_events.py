"""The event bus is shared by the engine thread (publishing) and any thread that subscribes."""
from __future__ import annotations

import threading

from kestra_nb.engine.events import EventBus, ExecutionUnstored


def test_subscribers_from_many_threads_while_publishing_lose_nobody() -> None:
    bus = EventBus()
    kept: list[str] = []
    bus.subscribe("x", lambda event: kept.append(event.execution_id))
    stop = threading.Event()

    def publisher() -> None:
        while not stop.is_set():
            bus.publish(ExecutionUnstored("x", "m"))

    def churn() -> None:
        for _ in range(2000):
            bus.subscribe("x", lambda event: None)()    # subscribe then unsubscribe at once
            bus.subscribe(None, lambda event: None)()

    pub = threading.Thread(target=publisher)
    pub.start()
    workers = [threading.Thread(target=churn) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    pub.join()
    # every transient subscriber is gone, the long-lived one is still there and was called every time
    assert list(bus._listeners) == ["x"] and len(bus._listeners["x"]) == 1
    before = len(kept)
    bus.publish(ExecutionUnstored("x", "m"))
    assert len(kept) == before + 1


def test_unsubscribe_twice_and_a_failing_listener_are_harmless() -> None:
    bus = EventBus()
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("broken view")

    unsubscribe = bus.subscribe("x", broken)
    bus.subscribe(None, seen.append)
    bus.publish(ExecutionUnstored("x", "m"))
    unsubscribe()
    unsubscribe()
    assert len(seen) == 1 and "x" not in bus._listeners
