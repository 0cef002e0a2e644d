"""Servers for hostile-input tests: a `kestra-nb server` in a child process under a memory cap.

`prlimit --as=…` caps the child's address space, so a regression (an alias bomb, a runaway jq program)
fails the test with a dead or refusing server instead of exhausting the machine. Each server gets its own
home in a temp dir and a free port picked by the OS (`--port 0`; the port is read off its start-up line).
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

MEMORY_CAP = 2 * 1024 ** 3          # bytes of address space a server under test may map
START_TIMEOUT = 60.0                # seconds a server may take to print its start-up line
_LISTENING = re.compile(r"listening on (http://\S+)")


class CappedServer:
    """A `kestra-nb server` child process under `prlimit --as`; `url`, `client`, `alive()`, `stop()`."""

    def __init__(self, home: Path, *, memory: int = MEMORY_CAP, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.home = home
        self.memory = memory
        command = ["prlimit", f"--as={memory}", "--", sys.executable, "-m", "kestra_nb.cli", "server",
                   "--port", "0", "--home", str(home), "--grace", "1", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})
        self.output: list[str] = []
        self.url = self._await_url()
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _await_url(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if not line:   # the process ended before it listened
                break
            self.output.append(line)
            found = _LISTENING.search(line)
            if found:
                return found.group(1)
        self.process.kill()
        self.process.wait()
        raise RuntimeError("the server did not start:\n" + "".join(self.output))

    def alive(self) -> bool:
        """Whether the child process still runs."""
        return self.process.poll() is None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def stop(self) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL if it does not end); its exit status."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def kill(self) -> None:
        """`kill -9` the server, as a crash would."""
        self.client.close()
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[Any]:
    """A factory of capped servers (`capped_server(home=…, memory=…, args=…)`), all stopped at the end."""
    servers: list[CappedServer] = []

    def start(home: Path | None = None, **kwargs: Any) -> CappedServer:
        server = CappedServer(home or tmp_path / f"home{len(servers)}", **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.alive():
            server.stop()
