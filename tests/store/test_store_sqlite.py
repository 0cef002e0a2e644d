"""SQLite-only behaviour: schema versions, refusing foreign files, several processes, and crashes."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kestra_nb.store.sqlite as sqlite_module
from kestra_nb.errors import StoreError
from kestra_nb.model.execution import Label
from kestra_nb.model.jsonfmt import dumps
from kestra_nb.store.sqlite import SCHEMA_VERSION, SQLiteStore
from store_helpers import build_execution, build_log

ROOT = Path(__file__).resolve().parents[2]


def _raw(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "kestra_nb.db", isolation_level=None)


def _schema(home: Path) -> list[tuple[str, str]]:
    conn = _raw(home)
    try:
        return conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def test_creates_home_and_sets_up_wal(tmp_path):
    home = tmp_path / "a" / "b"
    with SQLiteStore(home) as store:
        assert store.path == home / "kestra_nb.db" and store.path.exists()
        assert store.schema_version() == SCHEMA_VERSION
        conn = _raw(home)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_default_home_is_kestra_nb_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "env-home"))
    with SQLiteStore() as store:
        assert store.path == tmp_path / "env-home" / "kestra_nb.db"


def test_reopen_is_idempotent(tmp_path):
    ex = build_execution()
    with SQLiteStore(tmp_path) as store:
        store.save_flow("ns", "f", "id: f\n")
        store.save_execution(ex, [build_log(ex, "kept")])
    schema = _schema(tmp_path)
    for _ in range(2):
        with SQLiteStore(tmp_path) as store:
            assert store.schema_version() == SCHEMA_VERSION
            assert store.get_flow("ns", "f").revision == 1
            assert store.get_execution_document(ex.id) == ex.to_dict()
            assert [e.message for e in store.list_logs(ex.id)] == ["kept"]
    assert _schema(tmp_path) == schema


def test_a_later_migration_applies_once_on_open(tmp_path, monkeypatch):
    with SQLiteStore(tmp_path) as store:
        store.kv_put("ns", "k", "v", "STRING")
    upgraded = (*sqlite_module.MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",
                                            "INSERT INTO extra (x) SELECT count(*) FROM kv"))
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", upgraded)
    monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", len(upgraded))
    for _ in range(2):
        with SQLiteStore(tmp_path) as store:
            assert store.schema_version() == len(upgraded)
            assert store.kv_get("ns", "k").value == "v"
    conn = _raw(tmp_path)
    assert conn.execute("SELECT x FROM extra").fetchall() == [(1,)]  # ran exactly once
    conn.close()


def test_an_execution_written_before_task_runs_had_rows_reads_whole_and_is_rewritten(tmp_path):
    """Migration 6 moved task runs to rows of their own; a row written before it keeps its whole document."""
    ex = build_execution()
    with SQLiteStore(tmp_path) as store:
        store.save_execution(ex)
    conn = _raw(tmp_path)   # what a schema-5 store held: the whole document in the row, no task-run rows
    conn.execute("UPDATE executions SET document = ?, task_runs = 0, task_runs_at = NULL", (dumps(ex.to_dict()),))
    conn.execute("DELETE FROM task_runs")
    conn.close()
    with SQLiteStore(tmp_path) as store:
        assert store.get_execution_document(ex.id) == ex.to_dict()
        assert store.search_executions()[0][0].to_dict() == ex.to_dict()
        ex.labels.append(Label("after", "upgrade"))
        store.save_execution(ex)
        assert store.get_execution_document(ex.id) == ex.to_dict()
    conn = _raw(tmp_path)
    assert conn.execute("SELECT task_runs FROM executions").fetchall() == [(1,)]
    assert conn.execute("SELECT count(*) FROM task_runs").fetchall() == [(1,)]
    conn.close()


def test_an_execution_missing_task_run_rows_is_an_error_not_a_wrong_document(tmp_path):
    ex = build_execution()
    with SQLiteStore(tmp_path) as store:
        store.save_execution(ex)
        conn = _raw(tmp_path)
        conn.execute("DELETE FROM task_runs")
        conn.close()
        with pytest.raises(StoreError, match="has 0 task runs stored, its row says 1") as info:
            store.get_execution_document(ex.id)
        assert info.value.public == f"execution {ex.id} is stored incompletely"
        store.delete_execution(ex.id)
        assert store.get_execution_document(ex.id) is None


def test_deleting_an_execution_deletes_its_task_runs(tmp_path):
    ex = build_execution()
    with SQLiteStore(tmp_path) as store:
        store.save_execution(ex)
        assert store.delete_execution(ex.id)
    conn = _raw(tmp_path)
    assert conn.execute("SELECT count(*) FROM task_runs").fetchall() == [(0,)]
    conn.close()


def _raw_total(home: Path, where: str = "1", params: tuple = ()) -> int:
    conn = _raw(home)
    try:
        return conn.execute(f"SELECT count(*) FROM executions WHERE {where}", params).fetchone()[0]
    finally:
        conn.close()


def _totals_agree(store: SQLiteStore, home: Path) -> None:
    from kestra_nb.model.state import StateType
    cases = [
        ({}, "tenant = 'main'", ()),
        ({"namespace": "a"}, "namespace = 'a' OR namespace LIKE 'a.%'", ()),
        ({"namespace": "a", "namespace_prefix": False}, "namespace = 'a'", ()),
        ({"namespace": "a.b", "flow_id": "f"}, "namespace = 'a.b' AND flow_id = 'f'", ()),
        ({"states": [StateType.RUNNING]}, "state = 'RUNNING'", ()),
        ({"states": [StateType.SUCCESS, StateType.FAILED], "namespace": "b"},
         "state IN ('SUCCESS', 'FAILED') AND namespace = 'b'", ()),
        ({"labels": {"k": "v"}}, "labels LIKE '%\"k\",\"v\"%'", ()),
    ]
    for kwargs, where, params in cases:
        assert store.search_executions(**kwargs)[1] == _raw_total(home, where, params), kwargs


def test_search_totals_are_counted_without_a_scan_and_stay_exact(tmp_path):
    from kestra_nb.model.state import StateType
    with SQLiteStore(tmp_path) as store:
        made = []
        for i, (ns, flow) in enumerate([("a", "f"), ("a.b", "f"), ("a.b", "g"), ("ab", "f"), ("b", "f")] * 3):
            ex = build_execution(ns, flow, state=StateType.RUNNING, labels={"k": "v"} if i % 2 else None)
            store.save_execution(ex)
            made.append(ex)
        _totals_agree(store, tmp_path)
        assert store.search_executions(labels={"k": "v"})[1] == 7 and store.search_executions(namespace="a")[1] == 9
        for i, ex in enumerate(made):
            if i % 3 == 0:
                ex.state.transition(StateType.SUCCESS if i % 2 else StateType.FAILED)
            store.save_execution(ex)   # an unchanged state is saved too: it must not count twice
        _totals_agree(store, tmp_path)
        for ex in made[::4]:
            store.delete_execution(ex.id)
        _totals_agree(store, tmp_path)
        plan = store._conn.execute("EXPLAIN QUERY PLAN SELECT coalesce(sum(n), 0) FROM execution_counts "
                                   "WHERE tenant = 'main'").fetchall()
        assert "executions" not in " ".join(str(row) for row in plan).replace("execution_counts", "")


def test_the_newest_first_page_is_read_off_an_index_not_sorted(tmp_path, monkeypatch):
    """The listing's orders (Kestra's `state.startDate:desc`, the default, per flow) need no sort of every row."""
    plans: list[str] = []
    with SQLiteStore(tmp_path) as store:
        for _ in range(3):
            store.save_execution(build_execution())   # the same start date: ties broken by id
        cur = store._cur
        statements: list[tuple[str, list]] = []
        original = cur.execute

        class Spy:
            def __getattr__(self, name):
                return getattr(cur, name)

            def execute(self, sql, params=()):
                if sql.lstrip().startswith("SELECT executions.id"):
                    statements.append((sql, list(params)))
                return original(sql, params)

        monkeypatch.setattr(store, "_cur", Spy())
        for kwargs in ({}, {"sort": [("state.startDate", False)]},
                       {"namespace": "company.team", "namespace_prefix": False, "flow_id": "myflow",
                        "sort": [("state.startDate", False)]}):
            docs, total = store.search_execution_documents(size=2, **kwargs)
            assert total == 3 and len(docs) == 2
        for sql, params in statements:
            plans.append(" ".join(str(row[-1]) for row in original("EXPLAIN QUERY PLAN " + sql, params).fetchall()))
    assert len(plans) == 3
    for plan in plans:
        assert "TEMP B-TREE" not in plan and "INDEX executions_" in plan, plan


def test_migration_7_counts_the_executions_already_stored(tmp_path):
    from kestra_nb.model.state import StateType
    with SQLiteStore(tmp_path) as store:
        for state in (StateType.SUCCESS, StateType.SUCCESS, StateType.FAILED):
            store.save_execution(build_execution(state=state))
    conn = _raw(tmp_path)   # back to schema 6: no counts, no triggers
    for trigger in ("executions_count_insert", "executions_count_update", "executions_count_delete"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE execution_counts")
    conn.execute("DROP TABLE commands")   # (migration 8's, made again after 7)
    conn.execute("PRAGMA user_version = 6")
    conn.close()
    with SQLiteStore(tmp_path) as store:
        assert store.search_executions(states=[StateType.SUCCESS])[1] == 2
        assert store.search_executions()[1] == 3
        _totals_agree(store, tmp_path)


def test_newer_schema_is_refused(tmp_path):
    SQLiteStore(tmp_path).close()
    conn = _raw(tmp_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this kestra_nb supports") as info:
        SQLiteStore(tmp_path)
    assert str(tmp_path / "kestra_nb.db") in str(info.value)


def test_garbage_file_is_refused_with_its_path(tmp_path):
    (tmp_path / "kestra_nb.db").write_bytes(b"this is not a database\n" * 512)
    with pytest.raises(StoreError) as info:
        SQLiteStore(tmp_path)
    assert str(tmp_path / "kestra_nb.db") in str(info.value)


def test_foreign_sqlite_database_is_refused_untouched(tmp_path):
    conn = _raw(tmp_path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="another application"):
        SQLiteStore(tmp_path)
    assert [name for _, name in _schema(tmp_path)] == ["notes"]


def test_home_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="home directory"):
        SQLiteStore(tmp_path / "file" / "home")


def test_close_is_idempotent_and_later_calls_fail_cleanly(tmp_path):
    store = SQLiteStore(tmp_path)
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.get_execution("x")


def test_data_version_changes_when_another_connection_commits(tmp_path):
    with SQLiteStore(tmp_path) as watcher, SQLiteStore(tmp_path) as writer:
        before = watcher.data_version()
        assert watcher.data_version() == before  # reading changes nothing
        writer.save_execution(build_execution())
        after = watcher.data_version()
        assert after != before
        writer.kv_put("ns", "k", 1, "NUMBER")
        assert watcher.data_version() != after


def test_checkpoints_run_on_their_thread_and_stop_on_close(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 5)
    store = SQLiteStore(tmp_path)
    executions = [build_execution() for _ in range(40)]
    for ex in executions:
        store.save_execution(ex, [build_log(ex, "x")])
    checkpointer = store._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    store.close()
    assert not checkpointer._thread.is_alive()
    with SQLiteStore(tmp_path) as store:
        assert store.integrity_check() == "ok"
        assert store.search_executions(size=1)[1] == 40
    assert not (tmp_path / "kestra_nb.db-wal").exists() or (tmp_path / "kestra_nb.db-wal").stat().st_size == 0


def test_failed_transaction_rolls_back_execution_and_logs(tmp_path):
    with SQLiteStore(tmp_path) as store:
        ex = build_execution()
        # valid JSON, but SQLite cannot bind it: the failure comes after the execution row was written
        bad = build_log(ex, "unbindable", attempt=2**70)
        with pytest.raises(OverflowError):
            store.save_execution(ex, [build_log(ex, "fine"), bad])
        assert store.get_execution(ex.id) is None and store.list_logs(ex.id) == []
        store.save_execution(ex, [build_log(ex, "fine")])  # the connection is usable again
        assert [e.message for e in store.list_logs(ex.id)] == ["fine"]


# ------------------------------------------------------------------------------- several processes

_CHILD_PRELUDE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {helpers!r})
    from kestra_nb.model.execution import Level
    from kestra_nb.store.sqlite import SQLiteStore
    from store_helpers import build_execution, build_log
""").format(helpers=str(Path(__file__).resolve().parent))

_WRITER = _CHILD_PRELUDE + textwrap.dedent("""
    home, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # both children open the fresh file at the same moment
    store = SQLiteStore(home)
    store.save_flow("ns", "shared", "source of " + name)
    for i in range(count):
        ex = build_execution(namespace="ns." + name, inputs={"i": i}, labels={"writer": name})
        store.save_execution(ex, [build_log(ex, name + " " + str(i))])
        store.kv_put("ns", "counter", i, "NUMBER")
        store.append_logs([build_log(ex, "appended")])
    store.close()
    print("done", flush=True)
""")


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def test_two_processes_write_to_one_fresh_file(tmp_path):
    count = 60
    children = [_child(_WRITER, str(tmp_path), name, str(count)) for name in ("one", "two")]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout.readline().strip() == "done"
            assert child.wait(timeout=60) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    with SQLiteStore(tmp_path) as store:
        assert store.integrity_check() == "ok"
        assert store.schema_version() == SCHEMA_VERSION
        assert [r.revision for r in store.flow_revisions("ns", "shared")] == [1, 2]
        assert store.kv_get("ns", "counter").revision == 2 * count  # no lost update
        for name in ("one", "two"):
            found, total = store.search_executions(namespace="ns." + name, size=1000)
            assert total == count
            assert sorted(ex.inputs["i"] for ex in found) == list(range(count))
            for ex in found:
                assert [e.message for e in store.list_logs(ex.id)] == [f"{name} {ex.inputs['i']}", "appended"]
            assert store.search_executions(labels={"writer": name})[1] == count


_CRASHER = _CHILD_PRELUDE + textwrap.dedent("""
    store = SQLiteStore(sys.argv[1])
    i = 0
    while True:
        ex = build_execution(namespace="crash", inputs={"i": i})
        store.save_execution(ex, [build_log(ex, "log " + str(i), Level.WARN)])
        print(i, ex.id, flush=True)  # only once save_execution returned
        i += 1
""")


def test_killed_writer_loses_nothing_it_reported(tmp_path):
    child = _child(_CRASHER, str(tmp_path))
    printed: list[tuple[int, str]] = []
    try:
        # enough saves for a background checkpoint to have started (every CHECKPOINT_EVERY commits)
        while len(printed) < sqlite_module.CHECKPOINT_EVERY + 150:
            line = child.stdout.readline()
            assert line, "the writer died on its own"
            i, eid = line.split()
            printed.append((int(i), eid))
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()  # lines already in the pipe were printed after their save, too
        printed.extend((int(i), eid) for i, eid in (line.split() for line in rest.splitlines() if line.strip()))
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        child.stdin.close()
    assert child.returncode == -signal.SIGKILL
    with SQLiteStore(tmp_path) as store:
        assert store.integrity_check() == "ok"
        for i, eid in printed:
            doc = store.get_execution_document(eid)
            assert doc is not None, f"execution {i} ({eid}) was reported saved but is missing"
            assert (doc["id"], doc["namespace"], doc["inputs"], doc["state"]["current"]) == (
                eid, "crash", {"i": i}, "SUCCESS")
            assert len(doc["taskRunList"]) == 1
            assert [(e.message, e.level.value) for e in store.list_logs(eid)] == [(f"log {i}", "WARN")]
        assert store.search_executions(namespace="crash", size=1)[1] >= len(printed)
