"""Subflow over the REST API: `wait=true` answers with the parent execution and its outputs."""
from __future__ import annotations

from tests.engine.test_subflows import CHILD, parent

E = "/api/v1/main/executions"


def test_wait_true_returns_the_parents_outputs(http):
    http.deploy(CHILD)
    http.deploy(parent("    namespace: company.team\n    flowId: child\n    inputs:\n      name: api\n",
                       extra="outputs:\n  - id: relayed\n    type: STRING\n    value: \"{{ outputs.sub.outputs.greeting }}\"\n"))
    doc = http.run("company.team", "parent")
    assert doc["flowId"] == "parent" and doc["state"]["current"] == "SUCCESS"
    assert doc["outputs"] == {"relayed": "hello api"}
    sub = doc["taskRunList"][0]
    assert sub["outputs"]["outputs"] == {"greeting": "hello api"}
    child = http.get(f"{E}/{sub['outputs']['executionId']}").json()
    assert child["trigger"]["variables"]["executionId"] == doc["id"]
    assert child["trigger"]["type"] == "io.kestra.plugin.core.flow.Subflow"
    assert {"key": "system.correlationId", "value": doc["id"]} in child["labels"]

