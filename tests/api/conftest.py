"""A real kestra_nb server on a loopback port picked at runtime, its store in a temp dir, and HTTP helpers."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kestra_nb.api.auth import BasicAuth
from kestra_nb.server import Server, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent.parent
SEED = (ROOT / "examples" / "myflow.yml").read_text(encoding="utf-8")
YAML = {"Content-Type": "application/x-yaml"}

PAUSE_FLOW = """id: paused
namespace: company.team
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: resumed
outputs:
  - id: out
    type: STRING
    value: "{{ outputs.after.value }}"
"""

SLEEP_FLOW = """id: sleepy
namespace: company.team
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""

INPUTS_FLOW = """id: inputs
namespace: company.team
inputs:
  - id: name
    type: STRING
  - id: count
    type: INT
    defaults: 1
  - id: flag
    type: BOOLEAN
    required: false
  - id: doc
    type: FILE
    required: false
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }} x{{ inputs.count }}"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}/{{ inputs.count }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.ret.value }}"
"""


class Http:
    """httpx on the server's base URL, plus the few shortcuts the tests repeat."""

    def __init__(self, server: Server, auth: tuple[str, str] | None = None) -> None:
        self.server = server
        self.url = server.url
        self.client = httpx.Client(base_url=server.url, timeout=30, auth=auth)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.put(path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.delete(path, **kwargs)

    def deploy(self, source: str) -> dict[str, Any]:
        r = self.client.post("/api/v1/main/flows", content=source.encode(), headers=YAML)
        assert r.status_code == 200, r.text
        return r.json()

    def run(self, namespace: str, flow_id: str, *, params: dict[str, Any] | None = None,
            **kwargs: Any) -> dict[str, Any]:
        r = self.client.post(f"/api/v1/main/executions/{namespace}/{flow_id}",
                             params={"wait": "true", **(params or {})}, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()

    def start(self, namespace: str, flow_id: str, **kwargs: Any) -> dict[str, Any]:
        r = self.client.post(f"/api/v1/main/executions/{namespace}/{flow_id}", **kwargs)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_state(self, execution_id: str, *states: str, timeout: float = 10) -> dict[str, Any]:
        """Follow the execution (SSE, no polling) until it is in one of `states`."""
        with self.client.stream("GET", f"/api/v1/main/executions/{execution_id}/follow",
                                timeout=httpx.Timeout(timeout)) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data:"):
                    doc = json.loads(line[5:])
                    if doc.get("state", {}).get("current") in states:
                        return doc
        doc = self.get(f"/api/v1/main/executions/{execution_id}").json()
        assert doc["state"]["current"] in states, doc["state"]
        return doc

    def close(self) -> None:
        self.client.close()


@contextmanager
def serving(home: Path, **options: Any) -> Iterator[Server]:
    """A real server on a free loopback port (options as `serve_in_thread`'s), stopped and joined after."""
    srv, thread = serve_in_thread(home, grace=1, **options)
    try:
        yield srv
    finally:
        srv.stop()
        thread.join(15)
    assert not thread.is_alive()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path / "home") as srv:
        yield srv


@pytest.fixture
def http(server: Server) -> Iterator[Http]:
    client = Http(server)
    yield client
    client.close()


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path / "home", auth=BasicAuth("admin@kestra.io", "Admin1234!")) as srv:
        yield srv
