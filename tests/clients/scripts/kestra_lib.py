"""The `kestra` library's Flow.execute: create, then poll GET execution + logs download (with or without a
tenant), inputs as multipart (str() of each value), Basic auth through f.user / f.password."""
import os

import requests
from common import INPUTS, NAME, NS, PASSWORD, SEED, URL, USER
from kestra import Flow

tenant = os.environ.get("KESTRA_TEST_TENANT") or None
os.environ["KESTRA_HOSTNAME"] = URL
prefix = f"/api/v1/{tenant}" if tenant else "/api/v1"
for source in (SEED, INPUTS):
    r = requests.post(f"{URL}{prefix}/flows", data=source.encode(), auth=(USER, PASSWORD),
                      headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200, r.text

flow = Flow(wait_for_completion=True, poll_interval=0.05, tenant=tenant)
flow.user, flow.password = USER, PASSWORD
result = flow.execute(NS, "myflow")
assert result.status == "SUCCESS", result
execution = flow.check_status(result.execution_id).json()
assert execution["outputs"] == {"mydata": "hello from kestra"}

result = flow.execute(NS, "inputs", {"name": NAME, "count": 3, "flag": True})
assert result.status == "SUCCESS", result
assert f"Hello {NAME} x3" in result.log, result.log
execution = flow.check_status(result.execution_id).json()
assert execution["inputs"]["count"] == 3 and execution["inputs"]["flag"] is True  # str(True) -> "True" -> true
assert execution["outputs"] == {"greeting": f"{NAME}/3/true"}

# labels from inputs (unencoded `labels=name:value` in the URL), and a legacy `files` part
labelled = Flow(wait_for_completion=True, poll_interval=0.05, labels_from_inputs=True, tenant=tenant)
labelled.user, labelled.password = USER, PASSWORD
result = labelled.execute(NS, "inputs", {"name": "L", "files": ("doc", b"legacy", "text/plain")})
assert result.status == "SUCCESS", result
execution = labelled.check_status(result.execution_id).json()
assert {"key": "name", "value": "L"} in execution["labels"], execution["labels"]
assert execution["inputs"]["doc"].endswith("/inputs/doc/doc")

no_wait = Flow(wait_for_completion=False, tenant=tenant)
no_wait.user, no_wait.password = USER, PASSWORD
assert no_wait.execute(NS, "myflow").status == "STARTED"

anonymous = Flow(wait_for_completion=True, poll_interval=0.05, tenant=tenant)
try:
    anonymous.execute(NS, "myflow")
    raise AssertionError("401 expected")
except Exception as exc:  # the library raises a bare Exception on 401
    assert "Authentication required" in str(exc)
print(f"kestra lib (tenant={tenant}): OK")
