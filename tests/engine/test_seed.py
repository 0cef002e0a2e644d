"""The seed document's example flow: its JSON must match Kestra's key by key (ids and dates aside)."""
from __future__ import annotations

import json
from pathlib import Path

from kestra_nb.model.jsonfmt import parse_duration, parse_instant
from tests.kestra_json import assert_kestra_shape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# 1.x adds these to what the seed (0.x era) shows; spec §1.2/§1.6.
ADDED = {"tenantId", "labels"}


def test_seed_wait_response_matches_kestra(engine, seed_flow):
    ex = engine.run(seed_flow)
    assert ex.state == "SUCCESS"
    assert ex.outputs == {"mydata": "hello from kestra"}
    doc = ex.to_dict()
    kestra = json.loads((FIXTURES / "seed_wait_response.json").read_text())
    assert_kestra_shape(doc, kestra, extra=ADDED)
    assert doc["originalId"] == doc["id"]
    tr = doc["taskRunList"][0]
    assert tr["executionId"] == doc["id"]
    assert doc["labels"] == [{"key": "system.correlationId", "value": doc["id"]}]
    # durations are end - start, as Kestra computes them
    for state in (doc["state"], tr["state"], tr["attempts"][0]["state"]):
        assert parse_duration(state["duration"]) == (parse_instant(state["endDate"]) - parse_instant(state["startDate"]))
        assert state["startDate"] == state["histories"][0]["date"]
        assert state["endDate"] == state["histories"][-1]["date"]
    # the timeline nests: execution created first, task run inside the execution's run
    assert doc["state"]["startDate"] <= tr["state"]["startDate"] <= tr["state"]["endDate"] <= doc["state"]["endDate"]
    assert doc["metadata"]["originalCreatedDate"] == doc["state"]["startDate"]


def test_seed_created_document_matches_kestra(engine, seed_flow):
    from kestra_nb.parsing import parse_flow

    flow = parse_flow(seed_flow)
    ex = engine.new_execution(flow, 1)
    doc = ex.to_dict()
    kestra = json.loads((FIXTURES / "seed_create_response.json").read_text())
    # 1.2+ omits duration while not ended (spec §1.5), the seed was written against 1.1
    assert_kestra_shape(doc, kestra, extra=ADDED, missing={"duration"})
    assert "endDate" not in doc["state"] and "duration" not in doc["state"]


def test_seed_execution_is_stored_as_returned(engine, seed_flow):
    ex = engine.run(seed_flow)
    assert engine.store.get_execution_document(ex.id) == ex.to_dict()
    assert engine.store.get_execution(ex.id).to_dict() == ex.to_dict()
    record = engine.store.get_flow("company.team", "myflow")
    assert record.revision == 1 and record.source == seed_flow


def test_identical_source_keeps_revision_and_change_bumps_it(engine, seed_flow):
    assert engine.run(seed_flow).flow_revision == 1
    assert engine.run(seed_flow).flow_revision == 1
    changed = seed_flow.replace("hello from kestra", "hello again")
    ex = engine.run(changed)
    assert ex.flow_revision == 2 and ex.outputs == {"mydata": "hello again"}
