"""Schemathesis over the served OpenAPI document: whatever it sends, the server answers below 500.

The suite runs a small budget (a few cases per operation, derandomized: the same cases every run);
`make fuzz` runs many more (KESTRA_NB_FUZZ_EXAMPLES). The server is a real one on a loopback port with its
store in a temp dir; every operation of the document is tried, the event streams included.
"""
from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from kestra_nb.server import serve_in_thread

EXAMPLES = int(os.environ.get("KESTRA_NB_FUZZ_EXAMPLES", "4"))
YAML = {"Content-Type": "application/x-yaml"}
FLOW = """id: fuzzed
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.name }}"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server, thread = serve_in_thread(tmp_path_factory.mktemp("home"), port=0, grace=1)
    with httpx.Client(base_url=server.url, timeout=30) as client:   # something for the cases to find
        assert client.post("/api/v1/flows", content=FLOW, headers=YAML).status_code == 200
        assert client.post("/api/v1/executions/company.team/fuzzed?wait=true").status_code == 200
    try:
        yield server
    finally:
        server.stop()
        thread.join(30)


def operations(url: str) -> list:
    document = httpx.get(f"{url}/api/v1/openapi.json", timeout=30).json()
    return [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]


def test_no_request_is_a_server_error(served):
    failures: list[str] = []
    ops = operations(served.url)
    assert len(ops) > 50   # every route of the table
    for operation in ops:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            response = case.call(base_url=served.url, timeout=20)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code} "
                                f"{response.text[:300]}")
            elif response.status_code >= 400 and response.headers.get("Content-Type", "").startswith(
                    "application/json"):
                body = response.json()
                if not (isinstance(body, dict) and isinstance(body.get("message"), str)):  # Kestra's envelope
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} {body!r:.300}")

        fuzz()
    assert not failures, "\n".join(failures[:30])
