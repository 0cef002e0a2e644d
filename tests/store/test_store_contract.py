"""The `Store` contract, run against MemoryStore and SQLiteStore alike."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from kestra_nb.errors import IllegalArgumentError
from kestra_nb.model.execution import Execution, Level, TaskRun
from kestra_nb.model.ids import new_id
from kestra_nb.model.jsonfmt import ExecutionJson, dumps
from kestra_nb.model.state import State, StateType, utcnow
from kestra_nb.store import FlowRecord, KVEntry

from store_helpers import T0, build_execution

SOURCE = "id: myflow\nnamespace: company.team\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n"


# ---------------------------------------------------------------------------------------------- flows


def test_save_flow_starts_at_revision_one_and_keeps_identical_source(store):
    first = store.save_flow("company.team", "myflow", SOURCE)
    assert isinstance(first, FlowRecord)
    assert (first.namespace, first.id, first.revision, first.source, first.deleted, first.tenant_id) == (
        "company.team", "myflow", 1, SOURCE, False, "main")
    assert first.updated.tzinfo is not None
    again = store.save_flow("company.team", "myflow", SOURCE)
    assert again == first  # same revision, same timestamp: nothing was written
    changed = store.save_flow("company.team", "myflow", SOURCE + "# v2\n")
    assert changed.revision == 2
    assert store.get_flow("company.team", "myflow") == changed
    assert store.get_flow("company.team", "myflow", 1) == first
    assert store.get_flow("company.team", "myflow", 3) is None
    assert [r.revision for r in store.flow_revisions("company.team", "myflow")] == [1, 2]


def test_identical_source_means_byte_identical(store):
    store.save_flow("ns", "f", SOURCE)
    assert store.save_flow("ns", "f", SOURCE.replace("\n", "\r\n")).revision == 2
    assert store.save_flow("ns", "f", SOURCE + " ").revision == 3
    assert store.save_flow("ns", "f", SOURCE).revision == 4  # back to an older source is still a change


def test_delete_writes_a_deleted_revision_and_recreate_keeps_counting(store):
    store.save_flow("ns", "f", SOURCE)
    store.save_flow("ns", "f", SOURCE + "#2\n")
    deleted = store.delete_flow("ns", "f")
    assert deleted is not None and deleted.deleted and deleted.revision == 3 and deleted.source == SOURCE + "#2\n"
    assert store.get_flow("ns", "f") is None
    assert store.get_flow("ns", "f", allow_deleted=True) == deleted
    assert store.get_flow("ns", "f", 3) is None
    assert store.get_flow("ns", "f", 3, allow_deleted=True) == deleted
    assert store.get_flow("ns", "f", 2).revision == 2  # an older live revision stays readable (old executions)
    assert store.delete_flow("ns", "f") is None  # nothing live to delete
    assert store.list_flows("ns") == []
    # Re-creating with the very source of the deleted revision is a new revision, not the deleted one.
    recreated = store.save_flow("ns", "f", SOURCE + "#2\n")
    assert (recreated.revision, recreated.deleted) == (4, False)
    assert [(r.revision, r.deleted) for r in store.flow_revisions("ns", "f")] == [
        (1, False), (2, False), (3, True), (4, False)]


def test_missing_flow(store):
    assert store.get_flow("ns", "nope") is None
    assert store.get_flow("ns", "nope", allow_deleted=True) is None
    assert store.delete_flow("ns", "nope") is None
    assert store.flow_revisions("ns", "nope") == []


def test_list_flows_latest_live_revision_exact_or_prefix(store):
    for ns in ("company", "company.team", "company.team.sub", "companyx", "other"):
        store.save_flow(ns, "a", SOURCE)
    store.save_flow("company.team", "b", SOURCE)
    store.save_flow("company.team", "b", SOURCE + "#2\n")
    store.save_flow("company.team", "gone", SOURCE)
    store.delete_flow("company.team", "gone")
    store.save_flow("company.team", "a", SOURCE, tenant="other-tenant")

    def keys(records):
        return [(r.namespace, r.id, r.revision) for r in records]

    assert keys(store.list_flows("company.team")) == [("company.team", "a", 1), ("company.team", "b", 2)]
    assert keys(store.list_flows("company", prefix=True)) == [
        ("company", "a", 1), ("company.team", "a", 1), ("company.team", "b", 2), ("company.team.sub", "a", 1)]
    assert keys(store.list_flows("company")) == [("company", "a", 1)]
    assert [r.namespace for r in store.list_flows()] == [
        "company", "company.team", "company.team", "company.team.sub", "companyx", "other"]
    assert keys(store.list_flows(tenant="other-tenant")) == [("company.team", "a", 1)]


def test_flow_revisions_are_per_tenant(store):
    store.save_flow("ns", "f", SOURCE)
    store.save_flow("ns", "f", SOURCE + "#\n")
    other = store.save_flow("ns", "f", SOURCE, tenant="t2")
    assert (other.revision, other.tenant_id) == (1, "t2")
    assert store.get_flow("ns", "f", tenant="t2") == other
    assert store.get_flow("ns", "f").revision == 2


# ----------------------------------------------------------------------------------------- executions


def test_execution_round_trip(store, make_log):
    ex = build_execution(state=StateType.RUNNING)
    store.save_execution(ex, [make_log(ex, "started")])
    doc = ex.to_dict()
    assert store.get_execution_document(ex.id) == doc
    got = store.get_execution(ex.id)
    assert isinstance(got, Execution) and got is not ex
    assert got.to_dict() == doc


def test_save_execution_upserts_and_appends_logs(store, make_log):
    ex = build_execution(state=StateType.RUNNING)
    store.save_execution(ex, [make_log(ex, "one")])
    ex.state.transition(StateType.SUCCESS, T0 + timedelta(seconds=3))
    ex.outputs = {"out": 1}
    store.save_execution(ex, [make_log(ex, "two"), make_log(ex, "three")])
    assert store.get_execution_document(ex.id) == ex.to_dict()
    assert store.get_execution(ex.id).state == "SUCCESS"
    assert [e.message for e in store.list_logs(ex.id)] == ["one", "two", "three"]
    assert store.search_executions()[1] == 1


def _add_task_run(ex: Execution, task_id: str) -> TaskRun:
    tr = TaskRun(new_id(), ex.id, ex.namespace, ex.flow_id, task_id, State.new(), tenant_id=ex.tenant_id)
    ex.task_run_list.append(tr)
    return tr


def test_a_writer_stores_only_what_changed_and_the_document_reads_whole(store):
    ex = build_execution(state=StateType.RUNNING)
    writer = ExecutionJson()
    first = writer.update(ex)
    assert first.changed is None   # its first update is a full write
    store.save_execution(ex, parts=first)
    assert store.get_execution_document(ex.id) == ex.to_dict()
    running = _add_task_run(ex, "second")
    running.state.transition(StateType.RUNNING)
    parts = writer.update(ex)
    assert parts.changed == [1]    # the ended first task run is not written again
    store.save_execution(ex, parts=parts)
    assert store.get_execution_document(ex.id) == ex.to_dict()
    running.state.transition(StateType.SUCCESS)
    running.outputs = {"value": "ü" * 3}
    third = _add_task_run(ex, "third")
    parts = writer.update(ex)
    assert parts.changed == [1, 2]
    store.save_execution(ex, parts=parts)
    assert store.get_execution_document(ex.id) == ex.to_dict()
    assert store.get_execution_text(ex.id) == dumps(ex.to_dict())
    assert writer.update(ex).changed == [] and third.state.current is StateType.CREATED
    ex.state.transition(StateType.SUCCESS)
    store.save_execution(ex, parts=writer.update(ex))   # the execution row alone
    assert store.get_execution_document(ex.id) == ex.to_dict()
    assert store.get_execution(ex.id).task_run_list[1].outputs == {"value": "üüü"}
    found, total = store.search_executions(states=[StateType.SUCCESS])
    assert total == 1 and found[0].to_dict() == ex.to_dict()
    assert [e.to_dict() for e in store.executions_in_states([StateType.SUCCESS])] == [ex.to_dict()]


def test_a_shorter_or_replaced_task_run_list_is_written_whole(store):
    ex = build_execution(state=StateType.RUNNING)
    _add_task_run(ex, "second")
    writer = ExecutionJson()
    store.save_execution(ex, parts=writer.update(ex))
    ex.task_run_list = ex.task_run_list[:1]      # a restart dropping task runs replaces the list
    parts = writer.update(ex)
    assert parts.changed is None
    store.save_execution(ex, parts=parts)
    assert store.get_execution_document(ex.id) == ex.to_dict()
    ex.task_run_list = []
    store.save_execution(ex, parts=writer.update(ex))
    assert store.get_execution_document(ex.id) == ex.to_dict() and "taskRunList" not in ex.to_dict()
    store.save_execution(build_execution(execution_id=ex.id))   # no parts: a full write
    assert len(store.get_execution(ex.id).task_run_list) == 1


def test_store_hands_out_copies(store):
    ex = build_execution()
    document = ex.to_dict()
    store.save_execution(ex)
    document["namespace"] = "changed.after.save"
    ex.namespace = "changed.too"
    first = store.get_execution_document(ex.id)
    assert first["namespace"] == "company.team"
    first["state"]["current"] = "FAILED"
    assert store.get_execution_document(ex.id)["state"]["current"] == "SUCCESS"
    got = store.get_execution(ex.id)
    got.labels.clear()
    assert store.get_execution(ex.id).labels


def test_missing_execution_and_other_tenant(store):
    assert store.get_execution("nope") is None
    assert store.get_execution_document("nope") is None
    ex = build_execution(tenant="t2")
    store.save_execution(ex)
    assert store.get_execution(ex.id) is None
    assert store.get_execution(ex.id, tenant="t2").id == ex.id
    assert store.search_executions() == ([], 0)
    assert store.search_executions(tenant="t2")[1] == 1


def test_execution_without_tenant_is_in_main(store):
    ex = build_execution(tenant=None)
    store.save_execution(ex)
    assert "tenantId" not in store.get_execution_document(ex.id)
    assert store.search_executions()[1] == 1


def _seed_search(store):
    """Eight executions; returns them by name. Start times: a=T0, b=T0+1s, ... (h newest)."""
    specs = {
        "a": ("company", "f1", StateType.SUCCESS, 4.0, {"env": "prod", "team": "x"}),
        "b": ("company.team", "f1", StateType.FAILED, 1.0, {"env": "prod"}),
        "c": ("company.team", "f2", StateType.RUNNING, 0, {"env": "dev"}),
        "d": ("company.team.sub", "f1", StateType.SUCCESS, 2.0, {"env": "prod", "team": "x"}),
        "e": ("companyx", "f1", StateType.SUCCESS, 3.0, {}),
        "f": ("other", "f1", StateType.WARNING, 0.5, {"team": "x"}),
        "g": ("company.team", "f1", StateType.CREATED, 0, {}),
        "h": ("company.team", "f1", StateType.SUCCESS, 2.0, {"env": "prod"}),
    }
    out = {}
    for i, (name, (ns, flow, state, seconds, labels)) in enumerate(specs.items()):
        ex = build_execution(ns, flow, state=state, start=T0 + timedelta(seconds=i), seconds=seconds, labels=labels)
        store.save_execution(ex)
        out[name] = ex
    return out


def _names(result, executions):
    by_id = {ex.id: name for name, ex in executions.items()}
    found, total = result
    return "".join(by_id[ex.id] for ex in found), total


def test_search_default_order_is_newest_first_and_pages(store):
    ex = _seed_search(store)
    assert _names(store.search_executions(size=100), ex) == ("hgfedcba", 8)
    assert _names(store.search_executions(size=3), ex) == ("hgf", 8)
    assert _names(store.search_executions(size=3, page=3), ex) == ("ba", 8)
    assert _names(store.search_executions(size=3, page=4), ex) == ("", 8)
    found, _ = store.search_executions(size=1)
    assert isinstance(found[0], Execution) and found[0].to_dict() == ex["h"].to_dict()


def test_search_namespace_prefix_and_exact(store):
    ex = _seed_search(store)
    assert _names(store.search_executions(namespace="company", size=100), ex) == ("hgdcba", 6)
    assert _names(store.search_executions(namespace="company", namespace_prefix=False, size=100), ex) == ("a", 1)
    assert _names(store.search_executions(namespace="company.team", size=100), ex) == ("hgdcb", 5)
    assert _names(store.search_executions(namespace="company.te", size=100), ex) == ("", 0)


def test_search_filters(store):
    ex = _seed_search(store)
    assert _names(store.search_executions(flow_id="f2"), ex) == ("c", 1)
    assert _names(store.search_executions(namespace="company.team", flow_id="f1", namespace_prefix=False), ex) == (
        "hgb", 3)
    assert _names(store.search_executions(states=[StateType.SUCCESS, StateType.WARNING]), ex) == ("hfeda", 5)
    assert _names(store.search_executions(states=["RUNNING"]), ex) == ("c", 1)
    assert _names(store.search_executions(states=[]), ex) == ("", 0)
    assert _names(store.search_executions(labels={"env": "prod"}), ex) == ("hdba", 4)
    assert _names(store.search_executions(labels={"env": "prod", "team": "x"}), ex) == ("da", 2)
    assert _names(store.search_executions(labels={"env": "staging"}), ex) == ("", 0)
    assert _names(store.search_executions(labels={"system.correlationId": ex["e"].id}), ex) == ("e", 1)
    # start bounds are inclusive
    assert _names(store.search_executions(start_after=T0 + timedelta(seconds=5)), ex) == ("hgf", 3)
    assert _names(store.search_executions(start_before=T0 + timedelta(seconds=1)), ex) == ("ba", 2)
    assert _names(store.search_executions(start_after=T0 + timedelta(seconds=2),
                                          start_before=T0 + timedelta(seconds=3, microseconds=1)), ex) == ("dc", 2)
    assert _names(store.search_executions(namespace="company", states=[StateType.SUCCESS],
                                          labels={"team": "x"}), ex) == ("da", 2)


@pytest.mark.parametrize("sort, expected", [
    ([("id", True)], None),
    ([("namespace", True)], "ahgcbdef"),
    ([("namespace", False)], "fedhgcba"),
    ([("flowId", False)], "chgfedba"),
    ([("state.startDate", True)], "abcdefgh"),
    ([("state.startDate", False)], "hgfedcba"),
    # running and created executions have no end: NULL sorts lowest, ties keep the default order
    ([("state.endDate", True)], "gcbadfeh"),
    ([("state.endDate", False)], "hefdabgc"),
    ([("state.duration", True)], "gcfbhdea"),
    ([("state.duration", False)], "aehdbfgc"),
    ([("state.current", True)], "gbcheda" + "f"),
    ([("namespace", True), ("flowId", False)], "achgbdef"),
    ([("flowId", True), ("state.duration", False)], "aehdbfgc"),
])
def test_search_sort(store, sort, expected):
    ex = _seed_search(store)
    got, total = _names(store.search_executions(sort=sort, size=100), ex)
    if expected is None:  # ids are random: compare with sorting them here
        expected = "".join(sorted(ex, key=lambda n: ex[n].id))
    assert (got, total) == (expected, 8)


def test_search_rejects_bad_paging_and_sort(store):
    with pytest.raises(IllegalArgumentError):
        store.search_executions(page=0)
    with pytest.raises(IllegalArgumentError):
        store.search_executions(size=0)
    with pytest.raises(IllegalArgumentError, match="sort"):
        store.search_executions(sort=[("state.startDate; DROP TABLE executions", True)])


def test_executions_in_states(store):
    ex = _seed_search(store)
    found = store.executions_in_states([StateType.RUNNING, StateType.CREATED])
    assert [e.id for e in found] == [ex["c"].id, ex["g"].id]  # oldest first
    assert store.executions_in_states([]) == []
    assert store.executions_in_states([StateType.KILLED]) == []


def test_delete_execution_removes_its_logs_only(store, make_log):
    one, two = build_execution(), build_execution()
    store.save_execution(one, [make_log(one, "a"), make_log(one, "b")])
    store.save_execution(two, [make_log(two, "c")])
    assert store.delete_execution(one.id) is True
    assert store.get_execution(one.id) is None
    assert store.list_logs(one.id) == []
    assert [e.message for e in store.list_logs(two.id)] == ["c"]
    assert store.delete_execution(one.id) is False
    assert store.delete_execution(two.id, tenant="t2") is False
    assert store.get_execution(two.id) is not None
    # logs written later under a deleted id start a fresh list
    store.save_execution(one, [make_log(one, "again")])
    assert [e.message for e in store.list_logs(one.id)] == ["again"]


# ----------------------------------------------------------------------------------------------- logs


def test_logs_keep_write_order_and_round_trip(store, make_log):
    ex = build_execution()
    # timestamps deliberately out of order: the order is the order of writing
    entries = [make_log(ex, f"m{i}", at=T0 + timedelta(seconds=10 - i)) for i in range(5)]
    store.save_execution(ex, entries[:2])
    store.append_logs(entries[2:4])
    store.append_logs([])
    store.save_execution(ex, entries[4:])
    got = store.list_logs(ex.id)
    assert got == entries
    assert got[0] is not entries[0]


def test_list_logs_filters(store, make_log):
    ex = build_execution()
    other_run = "otherTaskRunId"
    entries = [
        make_log(ex, "error", Level.ERROR),
        make_log(ex, "warn", Level.WARN),
        make_log(ex, "info", Level.INFO),
        make_log(ex, "debug", Level.DEBUG, attempt=2),
        make_log(ex, "trace", Level.TRACE, task_id="other", task_run_id=other_run),
        make_log(ex, "execution-level", Level.INFO, task_id=None, task_run_id="", attempt=None),
    ]
    entries[5].task_run_id = None
    store.save_execution(ex, entries)

    def messages(**kw):
        return [e.message for e in store.list_logs(ex.id, **kw)]

    assert messages(min_level=Level.WARN) == ["error", "warn"]
    assert messages(min_level=Level.ERROR) == ["error"]
    assert messages(min_level=Level.INFO) == ["error", "warn", "info", "execution-level"]
    assert messages(min_level=Level.TRACE) == [e.message for e in entries]
    assert messages(task_id="other") == ["trace"]
    assert messages(task_run_id=other_run) == ["trace"]
    assert messages(task_run_id=ex.task_run_list[0].id, attempt=2) == ["debug"]
    assert messages(attempt=1, min_level=Level.INFO) == ["error", "warn", "info"]
    assert store.list_logs(ex.id, tenant="t2") == []
    assert store.list_logs("nope") == []
    assert store.list_logs(ex.id, task_id="hello")[0].attempt_number == 1


# ------------------------------------------------------------------------------------------------- KV


@pytest.mark.parametrize("value, type", [
    ("hello", "STRING"),
    (42, "NUMBER"),
    (3.5, "NUMBER"),
    (True, "BOOLEAN"),
    ({"a": [1, {"b": None}], "é": "ü"}, "JSON"),
    ([1, 2, 3], "JSON"),
    (datetime(2024, 7, 12, 5, 13, 42, 140000, tzinfo=timezone.utc), "DATETIME"),
    (date(2024, 7, 12), "DATE"),
    (timedelta(minutes=5, seconds=6), "DURATION"),
])
def test_kv_typed_values_round_trip(store, value, type):
    put = store.kv_put("company.team", "key", value, type, description="a key")
    assert isinstance(put, KVEntry)
    got = store.kv_get("company.team", "key")
    assert got == put
    assert (got.value, got.type, got.revision, got.description, got.tenant_id) == (value, type, 1, "a key", "main")
    assert got.updated.tzinfo is not None and got.expiration is None


def test_kv_revision_delete_and_list(store):
    assert store.kv_put("ns", "k", "v1", "STRING").revision == 1
    assert store.kv_put("ns", "k", "v2", "STRING").revision == 2
    assert store.kv_put("ns", "k", 3, "NUMBER").revision == 3
    got = store.kv_get("ns", "k")
    assert (got.value, got.type, got.revision) == (3, "NUMBER", 3)
    store.kv_put("ns", "a", "first", "STRING")
    store.kv_put("ns.child", "b", "elsewhere", "STRING")
    store.kv_put("ns", "z", "other tenant", "STRING", tenant="t2")
    assert [(e.key, e.value) for e in store.kv_list("ns")] == [("a", "first"), ("k", 3)]
    assert store.kv_get("ns", "z") is None
    assert store.kv_delete("ns", "k") is True
    assert store.kv_delete("ns", "k") is False
    assert store.kv_get("ns", "k") is None
    assert store.kv_put("ns", "k", "back", "STRING").revision == 1  # a deleted key starts over
    assert store.kv_get("missing", "k") is None
    assert store.kv_list("missing") == []


def test_kv_expiration(store):
    now = utcnow()
    store.kv_put("ns", "old", "v", "STRING", expiration=now - timedelta(seconds=1))
    future = now + timedelta(hours=1)
    live = store.kv_put("ns", "live", "v", "STRING", expiration=future)
    assert live.expiration == future
    assert store.kv_get("ns", "live").expiration == future
    assert store.kv_get("ns", "old") is None
    assert [e.key for e in store.kv_list("ns")] == ["live"]
    store.kv_put("ns", "old2", "v", "STRING", expiration=now - timedelta(seconds=1))
    assert store.kv_delete("ns", "old2") is False  # expired counts as missing
    store.kv_put("ns", "old3", "v", "STRING", expiration=now - timedelta(seconds=1))
    assert store.kv_put("ns", "old3", "again", "STRING").revision == 1  # expired key starts over
    assert store.kv_get("ns", "old3").value == "again"


def test_kv_rejects_unknown_type(store):
    with pytest.raises(IllegalArgumentError, match="KV type"):
        store.kv_put("ns", "k", "v", "TEXT")


def test_kv_entries_are_copies(store):
    store.kv_put("ns", "k", {"list": [1]}, "JSON")
    store.kv_get("ns", "k").value["list"].append(2)
    assert store.kv_get("ns", "k").value == {"list": [1]}


# --------------------------------------------------------------------------------------------- misc


def test_data_version_is_an_int(store):
    assert isinstance(store.data_version(), int)


def test_memory_data_version_changes_on_every_write(make_log):
    from kestra_nb.store.memory import MemoryStore

    store = MemoryStore()
    versions = [store.data_version()]
    ex = build_execution()
    for write in (lambda: store.save_flow("ns", "f", SOURCE), lambda: store.save_execution(ex),
                  lambda: store.append_logs([make_log(ex, "x")]), lambda: store.kv_put("ns", "k", 1, "NUMBER"),
                  lambda: store.kv_delete("ns", "k"), lambda: store.delete_execution(ex.id),
                  lambda: store.delete_flow("ns", "f")):
        write()
        versions.append(store.data_version())
    assert len(set(versions)) == len(versions)
    store.save_flow("ns", "g", SOURCE)
    v = store.data_version()
    store.save_flow("ns", "g", SOURCE)  # identical: no change
    assert store.data_version() == v


def test_open_store_picks_the_implementation(tmp_path):
    from kestra_nb.store import open_store
    from kestra_nb.store.memory import MemoryStore
    from kestra_nb.store.sqlite import SQLiteStore

    assert isinstance(open_store("memory:"), MemoryStore)
    s = open_store(str(tmp_path / "h"))
    try:
        assert isinstance(s, SQLiteStore) and s.path == tmp_path / "h" / "kestra_nb.db" and s.path.exists()
    finally:
        s.close()


def test_recoveries_are_counted_per_execution_and_forgotten_on_a_clean_stop(store, make_execution):
    ex = make_execution()
    store.save_execution(ex, [])
    assert store.count_recovery(ex.id) == 1
    assert store.count_recovery(ex.id) == 2   # committed before each attempt: a crash cannot lose one
    assert store.count_recovery("unknown") == 0
    store.forget_recoveries()
    assert store.count_recovery(ex.id) == 1
