"""Patterns that flows give for paths (globs and `regex:` of namespaceFiles, the namespace.* tasks, outputFiles,
LocalFiles outputs, a WorkingDirectory's cache) are bounded as every user pattern is: one that backtracks fails
its task naming the limit, and the engine's loop keeps answering meanwhile (Python's `re` held the GIL: one
glob froze the whole process for 50 s)."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kestra_nb.errors import TaskFailure
from kestra_nb.model.execution import Level
from kestra_nb.parsing.javaregex import REGEX_TIMEOUT
from kestra_nb.tasks.nsfiles import path_matcher
from kestra_nb.tasks.scripts import MAX_GLOB, glob_regex

HOSTILE_GLOB = "**" * 10 + "b"
HOSTILE_PATH = "/" + "a" * 40
EVIL = "/(a|aa)+c"   # backtracks exponentially on a run of a's not followed by c (tests/security/test_hostile_…)


@pytest.mark.parametrize("pattern", [f"glob:{HOSTILE_GLOB}", "regex:/(a+)+b", "regex:/(x+x+)+y"])
def test_a_backtracking_pattern_is_answered_or_fails_with_the_limit(pattern: str) -> None:
    accept = path_matcher([pattern], "files")
    try:
        assert accept(HOSTILE_PATH if "x" not in pattern else "/" + "x" * 40) is False
    except TaskFailure as exc:
        assert f"`files`: the regular expression `{pattern[6:]}` ran longer than {REGEX_TIMEOUT:g} s" in str(exc)


def test_the_classic_backtracking_regex_fails_with_the_limit() -> None:
    with pytest.raises(TaskFailure, match=rf"`files`: the regular expression .* ran longer than {REGEX_TIMEOUT:g} s"):
        path_matcher([f"regex:{EVIL}"], "files")(HOSTILE_PATH)


def test_bad_and_oversized_patterns_are_task_failures_naming_the_property() -> None:
    with pytest.raises(TaskFailure, match=r"`namespaceFiles.include`: invalid glob `\[z-a\]`"):
        path_matcher(["glob:[z-a]"], "namespaceFiles.include")
    with pytest.raises(TaskFailure, match=r"`files`: invalid regular expression `\(`"):
        path_matcher(["regex:("], "files")
    with pytest.raises(TaskFailure, match=rf"at most {MAX_GLOB}"):
        glob_regex("a" * (MAX_GLOB + 1), "cache.patterns")
    with pytest.raises(TaskFailure, match=r"`outputFiles`: invalid glob `\{a,b` \(unclosed"):
        glob_regex("{a,b")


def test_the_engine_loop_answers_while_a_flow_matches_a_hostile_glob(engine: Any) -> None:
    """A DeleteFiles with a backtracking regex fails its task with the limit; meanwhile the engine's loop runs
    other work (a probe scheduled on it every 50 ms never waits as long as the match's time limit)."""
    files = engine.store.storage.namespace_files
    files.put("company.team", HOSTILE_PATH, b"x")
    gaps: list[float] = []

    async def probe() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.run_coroutine_threadsafe(probe(), engine.loop)
    try:
        ex = engine.run(f"""id: hostile
namespace: company.team
tasks:
  - id: del
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: company.team
    files: ["regex:{EVIL}"]
""")
    finally:
        task.cancel()
    assert ex.state == "FAILED"
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any(f"ran longer than {REGEX_TIMEOUT:g} s" in m for m in errors), errors
    assert files.list("company.team") == [HOSTILE_PATH]   # nothing deleted
    assert gaps and max(gaps) < REGEX_TIMEOUT, max(gaps)
