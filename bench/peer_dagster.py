"""Kestra's benchmark 3 shape in Dagster, for a same-run comparison: a fan-out over 100 values, two ops each
(first -> second), gathered; run by Dagster's in-process executor on an ephemeral instance, its console
logger at ERROR (its DEBUG lines would be most of its time otherwise)."""
from __future__ import annotations

import time


def benchmark3_seconds(values: int = 100, runs: int = 3) -> list[float]:
    """Wall-clock seconds of `runs` runs (after one warm-up)."""
    from dagster import DagsterInstance, DynamicOut, DynamicOutput, job, op

    @op(out=DynamicOut())
    def fan_out():
        for i in range(values):
            yield DynamicOutput(str(i), mapping_key=f"v{i}")

    @op
    def first(value: str) -> str:
        return value

    @op
    def second(value: str) -> str:
        return value

    @op
    def gather(results: list) -> int:
        return len(results)

    @job
    def benchmark3():
        gather(fan_out().map(lambda v: second(first(v))).collect())

    instance = DagsterInstance.ephemeral()
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    samples = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        result = benchmark3.execute_in_process(instance=instance, run_config=config)
        assert result.success and result.output_for_node("gather") == values
        if i:
            samples.append(time.perf_counter() - t0)
    return samples
