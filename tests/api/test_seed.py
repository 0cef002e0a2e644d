"""The seed document's curl calls, run as written against `kestra-nb server`: same shapes as Kestra's."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kestra_nb.model.jsonfmt import parse_duration, parse_instant
from tests.api.conftest import SEED
from tests.kestra_json import assert_kestra_shape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# 1.x adds tenantId and labels to the seed's (0.x era) documents, and `url` to create responses (spec §1.2)
ADDED = {"tenantId", "labels", "url"}


def curl(*args: str) -> tuple[int, str]:
    """Run curl like the seed does; (HTTP status, body)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                          timeout=30, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_seed_async_create_with_curl(http):
    http.deploy(SEED)
    status, body = curl("-X", "POST", f"{http.url}/api/v1/executions/company.team/myflow")
    assert status == 200
    doc = json.loads(body)
    kestra = json.loads((FIXTURES / "seed_create_response.json").read_text())
    # 1.2+ omits duration while not ended (spec §1.5); the seed was written against 1.1
    assert_kestra_shape(doc, kestra, extra=ADDED, missing={"duration"})
    assert doc["state"]["current"] == "CREATED" and doc["originalId"] == doc["id"]
    assert doc["url"] == f"/ui/main/executions/company.team/myflow/{doc['id']}"


def test_seed_sync_create_with_curl(http):
    http.deploy(SEED)
    status, body = curl("-X", "POST", f"{http.url}/api/v1/executions/company.team/myflow?wait=true")
    assert status == 200
    doc = json.loads(body)
    kestra = json.loads((FIXTURES / "seed_wait_response.json").read_text())
    assert_kestra_shape(doc, kestra, extra=ADDED)
    assert doc["outputs"] == {"mydata": "hello from kestra"}
    assert doc["state"]["current"] == "SUCCESS"
    tr = doc["taskRunList"][0]
    assert tr["outputs"] == {"value": "hello from kestra"} and tr["executionId"] == doc["id"]
    for state in (doc["state"], tr["state"], tr["attempts"][0]["state"]):
        assert parse_duration(state["duration"]) == parse_instant(state["endDate"]) - parse_instant(state["startDate"])
    # what the API answered is what is stored
    stored = http.get(f"/api/v1/executions/{doc['id']}").json()
    assert {k: v for k, v in doc.items() if k != "url"} == stored


def test_seed_with_tenant_path_and_the_flow_deployed_by_curl(http, tmp_path):
    flow = tmp_path / "myflow.yml"
    flow.write_text(SEED)
    status, body = curl("-X", "POST", f"{http.url}/api/v1/main/flows", "-H", "Content-Type: application/x-yaml",
                        "--data-binary", f"@{flow}")
    assert status == 200 and json.loads(body)["revision"] == 1
    status, body = curl("-X", "POST", f"{http.url}/api/v1/main/executions/company.team/myflow?wait=true")
    assert status == 200 and json.loads(body)["outputs"] == {"mydata": "hello from kestra"}


def test_seed_sync_response_headers(http):
    http.deploy(SEED)
    r = http.post("/api/v1/executions/company.team/myflow", params={"wait": "true"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
