"""jq programs run in a child process, bounded in time and memory.

jq is a Turing-complete language running in C: `last(range(1e12))` computes for hours without giving the
GIL back, `[limit(1e8; repeat("aaaa"))]` allocates until the process dies. Neither may happen in the engine's
process, so the `jq` filter hands each program and its input to one persistent child per process (started
on first use, restarted after it is lost): it runs under `RLIMIT_AS` = `JQ_MEMORY`, and the parent waits at
most `JQ_TIMEOUT` seconds for its answer, then kills it. Either limit fails the render with a message that
names it. The child reads requests as JSON lines on stdin and exits when stdin closes (the parent is gone).

This file is also the child's program (`python -I jqworker.py`): that part imports only the standard
library and `jq`, so the child starts in tens of milliseconds.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

JQ_TIMEOUT = 5.0                  # seconds a jq program may run
JQ_MEMORY = 512 * 1024 * 1024     # bytes of address space of the child running jq programs
START_TIMEOUT = 60.0              # seconds the child may take to start (not counted in a program's time)


class JqLimit(Exception):
    """A jq program went past a limit (time, memory, size of its results)."""


class JqProgramError(Exception):
    """The program or its input was refused by jq: `kind` is "compile" or "value", `message` jq's words."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class JqWorker:
    """The parent's side: one child, one request at a time (a lock), restarted when it is lost."""

    def __init__(self, timeout: float = JQ_TIMEOUT, memory: int = JQ_MEMORY) -> None:
        self.timeout = timeout
        self.memory = memory
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._owner = 0        # the pid that started the child (a forked process starts its own)
        self._pending = b""

    def run(self, program: str, text: str, max_results: int, max_bytes: int) -> list[Any]:
        """Everything `program` produces from the JSON `text` (JqLimit, JqProgramError)."""
        request = json.dumps({"p": program, "t": text, "n": max_results, "b": max_bytes}).encode("utf-8") + b"\n"
        with self._lock:
            child = self._ensure()
            try:
                assert child.stdin is not None
                child.stdin.write(request)
                child.stdin.flush()
                line = self._read_line(child, time.monotonic() + self.timeout)
            except BrokenPipeError:
                line = None
            if line is None:   # no answer in time, or the child died (out of memory)
                timed_out = child.poll() is None
                self._stop()
                if timed_out:
                    raise JqLimit(f"jq program exceeded its {self.timeout:g} s time limit") from None
                raise JqLimit(f"jq program exceeded its memory limit ({self.memory // (1024 * 1024)} MiB)") from None
        answer = json.loads(line)
        if "ok" in answer:
            return answer["ok"]
        if "limit" in answer:
            raise JqLimit(answer["limit"])
        message = answer.get("error", "")
        if "cannot allocate memory" in message or "MemoryError" in message:
            raise JqLimit(f"jq program exceeded its memory limit ({self.memory // (1024 * 1024)} MiB)")
        raise JqProgramError(answer.get("kind", "value"), message)

    def _ensure(self) -> subprocess.Popen[bytes]:
        child = self._child
        if child is not None and child.poll() is None and self._owner == os.getpid():
            return child
        self._child = subprocess.Popen(
            [sys.executable, "-I", __file__, str(self.memory)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        self._owner = os.getpid()
        self._pending = b""
        if self._read_line(self._child, time.monotonic() + START_TIMEOUT) is None:
            self._stop()
            raise JqLimit("the jq worker process could not be started")
        assert self._child is not None
        return self._child

    def _read_line(self, child: subprocess.Popen[bytes], deadline: float) -> bytes | None:
        assert child.stdout is not None
        fd = child.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _stop(self) -> None:
        child, self._child = self._child, None
        self._pending = b""
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self) -> None:
        """Stop the child (it also stops by itself when this process ends: its stdin closes)."""
        with self._lock:
            self._stop()


_WORKER: JqWorker | None = None
_WORKER_LOCK = threading.Lock()


def worker() -> JqWorker:
    """This process's jq worker."""
    global _WORKER
    if _WORKER is None:
        with _WORKER_LOCK:
            if _WORKER is None:
                _WORKER = JqWorker()
    return _WORKER


# ------------------------------------------------------------------------------------------------ child

def _serve(memory: int) -> None:   # pragma: no cover - runs in the child (tested through JqWorker)
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import jq

    programs: dict[str, Any] = {}
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')   # started: the parent's time limit counts from here
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            program = programs.get(request["p"])
            if program is None:
                try:
                    program = jq.compile(request["p"])
                except ValueError as exc:
                    answer: dict[str, Any] = {"kind": "compile", "error": str(exc)}
                    out.write(json.dumps(answer).encode("utf-8") + b"\n")
                    out.flush()
                    continue
                if len(programs) >= 256:
                    programs.clear()
                programs[request["p"]] = program
            results, size = [], 0
            for result in program.input_text(request["t"]):
                results.append(result)
                size += len(json.dumps(result, ensure_ascii=False))
                if len(results) > request["n"]:
                    answer = {"limit": f"Rendering limit exceeded: a jq result with more than {request['n']} elements"}
                    break
                if size > request["b"]:
                    answer = {"limit": f"Rendering limit exceeded: a jq result larger than {request['b']} characters"}
                    break
            else:
                answer = {"ok": results}
        except MemoryError:
            answer = {"error": "MemoryError"}
        except ValueError as exc:
            answer = {"kind": "value", "error": str(exc)}
        out.write(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()


if __name__ == "__main__":   # pragma: no cover - the child
    _serve(int(sys.argv[1]))
