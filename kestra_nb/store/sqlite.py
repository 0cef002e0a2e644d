"""The embedded default store: one SQLite file (`<home>/kestra_nb.db`) shared by every process.

This module owns the schema (tables, indexes, the ordered list of migrations and `PRAGMA user_version`),
the connection settings (WAL, synchronous=NORMAL, busy timeout) and the SQL of every `Store` method.

Why it looks the way it does:
- WAL with synchronous=NORMAL makes a commit durable against the process dying (not against power loss)
  without an fsync per commit, and lets readers in other processes run while one writes.
- Writes take the lock up front (`BEGIN IMMEDIATE`), so a transaction never fails half-way on a lock
  upgrade; the busy timeout makes concurrent writers queue instead of failing.
- `save_execution` is on the engine's hot path (3-4 calls per tiny flow): one connection and one cursor
  reused under an RLock, statements cached by sqlite3, no PRAGMA or SELECT per call, logs via executemany.
- Checkpoints (copying the WAL back into the database, with fsyncs) run on a background thread with its
  own connection instead of inside whichever commit crosses SQLite's threshold: that commit would
  otherwise pay milliseconds. Commits stay durable either way: they are in the WAL.
- Instants are integer microseconds since the epoch: compact, exact, and sortable.
"""
from __future__ import annotations

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import json
import os
import sqlite3
import threading
import uuid
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..config import db_path, home_dir
from ..errors import NotFoundError, StoreError
from ..model.execution import Execution, Level, LogEntry
from ..model.jsonfmt import ExecutionText, dumps, execution_json, join_execution, log_from_dict, log_text
from ..model.state import StateType, utcnow
from .base import PURGE_BATCH, EndedExecution, FlowRecord, KVEntry, PurgeCounts, StoredCommand, TriggerState
from .storage import InternalStorage
from ._common import (
    check_kv_type, check_paging, execution_columns, from_us, kv_decode, kv_encode, purgeable_states, sort_columns,
    source_sha256, tenant_of, to_us,
)

# Marks the file as ours (PRAGMA application_id), so a foreign SQLite database is refused, not altered.
APPLICATION_ID = 0x4B4E4231  # "KNB1"

# Migration N (1-based) takes the schema from version N-1 to N. Append only; never edit a shipped one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: flows, executions, logs, kv
        """CREATE TABLE flows (
            tenant TEXT NOT NULL, namespace TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL,
            source TEXT NOT NULL, source_sha256 TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL,
            PRIMARY KEY (tenant, namespace, id, revision))""",
        """CREATE TABLE executions (
            id TEXT PRIMARY KEY, tenant TEXT NOT NULL, namespace TEXT NOT NULL, flow_id TEXT NOT NULL,
            flow_revision INTEGER, state TEXT NOT NULL, start_date INTEGER, end_date INTEGER,
            duration INTEGER, parent_id TEXT, labels TEXT, document TEXT NOT NULL)""",
        "CREATE INDEX executions_flow ON executions (tenant, namespace, flow_id, start_date)",
        "CREATE INDEX executions_start ON executions (tenant, start_date)",
        # No index on state: it changes on almost every save, and an index entry rewritten per save costs
        # more (~5 µs each) than the rare scans that need it (recovery at start-up).
        # seq without AUTOINCREMENT (which costs a sqlite_sequence write per commit): a new row still gets
        # max(seq) + 1, so an execution's logs are in write order and seq only grows while it exists.
        """CREATE TABLE logs (
            seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, namespace TEXT, flow_id TEXT,
            execution_id TEXT, task_run_id TEXT, task_id TEXT, attempt_number INTEGER,
            level INTEGER NOT NULL, timestamp INTEGER NOT NULL, document TEXT NOT NULL)""",
        "CREATE INDEX logs_execution ON logs (execution_id, seq)",
        """CREATE TABLE kv (
            tenant TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL,
            value TEXT NOT NULL, revision INTEGER NOT NULL, updated INTEGER NOT NULL, expiration INTEGER,
            description TEXT,
            PRIMARY KEY (tenant, namespace, key)) WITHOUT ROWID""",
        f"PRAGMA application_id = {APPLICATION_ID}",
    ),
    (  # 2: which engine (process) drives each execution, for crash recovery
        "ALTER TABLE executions ADD COLUMN owner TEXT",
    ),
    (  # 3: metrics that tasks record (scripts' `::{"metrics": …}::`), as Kestra's MetricEntry documents
        """CREATE TABLE metrics (
            seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, execution_id TEXT NOT NULL, task_run_id TEXT,
            document TEXT NOT NULL)""",
        "CREATE INDEX metrics_execution ON metrics (execution_id, seq)",
    ),
    (  # 4: the scheduler's trigger states, its fire-once marks, and ended executions for Flow triggers
        """CREATE TABLE triggers (
            tenant TEXT NOT NULL, namespace TEXT NOT NULL, flow_id TEXT NOT NULL, trigger_id TEXT NOT NULL,
            next_date INTEGER, last_date INTEGER, data TEXT, version INTEGER NOT NULL, updated INTEGER NOT NULL,
            PRIMARY KEY (tenant, namespace, flow_id, trigger_id)) WITHOUT ROWID""",
        """CREATE TABLE trigger_marks (
            tenant TEXT NOT NULL, key TEXT NOT NULL, created INTEGER NOT NULL,
            PRIMARY KEY (tenant, key)) WITHOUT ROWID""",
        "CREATE INDEX executions_end ON executions (tenant, end_date)",
    ),
    (  # 5: how many times crash recovery took an execution over since the last clean stop (poison pills)
        "ALTER TABLE executions ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0",
    ),
    (  # 6: task runs in rows of their own, written as they change (not the whole document per commit).
        # executions.document then holds the document without its taskRunList; `task_runs` says how many
        # rows belong to it and `task_runs_at` where in its text the list goes (rows written before this
        # migration have 0 and keep their whole document).
        "ALTER TABLE executions ADD COLUMN task_runs INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE executions ADD COLUMN task_runs_at INTEGER",
        """CREATE TABLE task_runs (
            execution_id TEXT NOT NULL, seq INTEGER NOT NULL, document TEXT NOT NULL,
            PRIMARY KEY (execution_id, seq)) WITHOUT ROWID""",
    ),
    (  # 7: executions counted per (tenant, namespace, flow, state), kept by triggers, so a search's total
        # needs no count(*) over the whole table (a state changes a few times per execution, not per commit);
        # the start-date indexes end with id
        """CREATE TABLE execution_counts (
            tenant TEXT NOT NULL, namespace TEXT NOT NULL, flow_id TEXT NOT NULL, state TEXT NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (tenant, namespace, flow_id, state)) WITHOUT ROWID""",
        """INSERT INTO execution_counts (tenant, namespace, flow_id, state, n)
            SELECT tenant, namespace, flow_id, state, count(*) FROM executions GROUP BY 1, 2, 3, 4""",
        """CREATE TRIGGER executions_count_insert AFTER INSERT ON executions BEGIN
            INSERT INTO execution_counts (tenant, namespace, flow_id, state, n)
                VALUES (new.tenant, new.namespace, new.flow_id, new.state, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        """CREATE TRIGGER executions_count_update AFTER UPDATE OF state ON executions
            WHEN old.state IS NOT new.state BEGIN
            UPDATE execution_counts SET n = n - 1 WHERE tenant = old.tenant AND namespace = old.namespace
                AND flow_id = old.flow_id AND state = old.state;
            INSERT INTO execution_counts (tenant, namespace, flow_id, state, n)
                VALUES (new.tenant, new.namespace, new.flow_id, new.state, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        # the listing's default order is (start_date, id): with id in the indexes, a page is read straight off
        # them, with no sort of every row that ties on start_date
        "DROP INDEX executions_start",
        "CREATE INDEX executions_start ON executions (tenant, start_date, id)",
        "DROP INDEX executions_flow",
        "CREATE INDEX executions_flow ON executions (tenant, namespace, flow_id, start_date, id)",
        """CREATE TRIGGER executions_count_delete AFTER DELETE ON executions BEGIN
            UPDATE execution_counts SET n = n - 1 WHERE tenant = old.tenant AND namespace = old.namespace
                AND flow_id = old.flow_id AND state = old.state;
        END""",
    ),
    (  # 8: commands (kill, pause, resume…) any process sharing the store gives an execution; the process
        # driving it applies them and marks them done in the transaction that commits their effect
        """CREATE TABLE commands (
            seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, execution_id TEXT NOT NULL, kind TEXT NOT NULL,
            payload TEXT, created INTEGER NOT NULL, done INTEGER, error TEXT)""",
        "CREATE INDEX commands_pending ON commands (seq) WHERE done IS NULL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

BUSY_TIMEOUT_MS = 10_000
# Ask for a checkpoint every this many commits (a commit writes ~2-5 pages: about SQLite's default of
# 1000 WAL pages), and force one that waits for writers when the WAL still holds this many pages.
CHECKPOINT_EVERY = 256
CHECKPOINT_FORCE_PAGES = 20_000

# What identifies an execution (tenant, namespace, flow, start date) never changes for an id, so the upsert
# leaves those columns alone: their index entries are written once, on insert.
_UPSERT_EXECUTION = """
INSERT INTO executions (id, tenant, namespace, flow_id, flow_revision, state, start_date, end_date, duration,
                        parent_id, labels, document, owner, task_runs, task_runs_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    flow_revision = excluded.flow_revision, state = excluded.state, end_date = excluded.end_date,
    duration = excluded.duration, parent_id = excluded.parent_id, labels = excluded.labels,
    document = excluded.document, owner = excluded.owner, task_runs = excluded.task_runs,
    task_runs_at = excluded.task_runs_at"""
_PUT_TASK_RUN = "INSERT OR REPLACE INTO task_runs (execution_id, seq, document) VALUES (?, ?, ?)"
_DOCUMENT_COLUMNS = "executions.id, executions.document, executions.task_runs, executions.task_runs_at"
STREAM_OVER = 2000    # task runs: a larger execution document is read as it is sent (execution_text_stream)
STREAM_BATCH = 500    # task runs a chunk

_INSERT_LOG = """
INSERT INTO logs (tenant, namespace, flow_id, execution_id, task_run_id, task_id, attempt_number, level,
                  timestamp, document)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

_FLOW_COLUMNS = "namespace, id, revision, source, updated, deleted, tenant"


def _flow(row: tuple[Any, ...]) -> FlowRecord:
    namespace, flow_id, revision, source, updated, deleted, tenant = row
    return FlowRecord(namespace, flow_id, revision, source, from_us(updated), bool(deleted), tenant)  # type: ignore[arg-type]


def _log_row(entry: LogEntry) -> tuple[Any, ...]:
    return (tenant_of(entry.tenant_id), entry.namespace, entry.flow_id, entry.execution_id, entry.task_run_id,
            entry.task_id, entry.attempt_number, Level(entry.level).severity, to_us(entry.timestamp),
            log_text(entry))


# Our own column format (not a Kestra document): a prebuilt encoder skips json.dumps' per-call set-up.
_encode_labels = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _labels_json(execution: Execution) -> str | None:
    # [[key, value], ...]: searched with json_each; NULL when there is none, the cheapest to write.
    labels = execution.labels
    return _encode_labels([[label.key, label.value] for label in labels]) if labels else None


def _namespace_clause(namespace: str, prefix: bool, params: list[Any]) -> str:
    if not prefix:
        params.append(namespace)
        return "namespace = ?"
    # `ns` and `ns.*` but not `nsx`: '/' follows '.' in byte order, so the range is exactly `ns.` + anything,
    # and it can use the index (LIKE would need escaping of `_` and could not).
    params.extend((namespace, namespace + ".", namespace + "/"))
    return "(namespace = ? OR (namespace >= ? AND namespace < ?))"


def _execution_filter(clauses: list[str], params: list[Any], namespace: str | None, namespace_prefix: bool,
                      flow_id: str | None, states: list[str] | None, start_after: datetime | None,
                      start_before: datetime | None) -> None:
    """Add the executions table's filters (start bounds inclusive) to `clauses` and their `params`."""
    if namespace is not None:
        clauses.append(_namespace_clause(namespace, namespace_prefix, params))
    if flow_id is not None:
        clauses.append("flow_id = ?")
        params.append(flow_id)
    if states is not None:
        clauses.append(f"state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    if start_after is not None:
        clauses.append("start_date >= ?")
        params.append(to_us(start_after))
    if start_before is not None:
        clauses.append("start_date <= ?")
        params.append(to_us(start_before))


class _Checkpointer:
    """Checkpoints the WAL on its own thread and connection, when the store asks for it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kestra_nb-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Wake the thread for one checkpoint (cheap; requests while one runs coalesce)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the running checkpoint, if any, and end the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # checkpoints are an optimisation; SQLite still checkpoints on the last close
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    # PASSIVE never blocks writers. If writers outpace it (the WAL never fully copied, so
                    # never restarted), RESTART once: it waits for a gap between writers and lets the next
                    # writer start the WAL file over.
                    _, wal_pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if wal_pages >= CHECKPOINT_FORCE_PAGES:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                except sqlite3.Error:
                    pass  # busy or racing a close: the next request tries again
        finally:
            conn.close()


def _take_ownership(home: Path) -> tuple[str, Any]:
    """A new owner id for this store, and the OS lock that says its process is alive."""
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    if fcntl is None:  # no flock: liveness falls back to the pid (see _owner_alive)
        return owner, None
    folder = home / "owners"
    folder.mkdir(exist_ok=True)
    handle = open(folder / f"{owner}.lock", "w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return owner, handle


def _release_ownership(handle: Any) -> None:
    if handle is not None:
        path = Path(handle.name)
        handle.close()  # releases the lock
        path.unlink(missing_ok=True)


def _owner_alive(home: Path, owner: str | None) -> bool:
    """Whether the process behind `owner` still runs (a lock nobody holds, or no lock file, means no)."""
    if not owner:
        return False
    if fcntl is None:
        try:
            os.kill(int(owner.split("-", 1)[0]), 0)
        except (OSError, ValueError):
            return False
        return True
    path = home / "owners" / f"{owner}.lock"
    try:
        handle = open(path, "r+")
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return True
    handle.close()
    path.unlink(missing_ok=True)
    return False


class SQLiteStore:
    """The `Store` on a SQLite file in `home` (the default home when None)."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        home_path = Path(home).expanduser() if home is not None else home_dir()
        self.path = db_path(home_path)
        self.storage = InternalStorage(home_path / "storage")
        self._lock = threading.RLock()
        self._closed = True
        try:
            home_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the kestra_nb home directory {home_path}: {exc}") from exc
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         cached_statements=256)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the kestra_nb store {self.path}: {exc}") from exc
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise
        self._cur = self._conn.cursor()
        self.owner, self._owner_lock = _take_ownership(home_path)
        self._commits = 0
        self._checkpointer: _Checkpointer | None = None
        self._closed = False

    # ------------------------------------------------------------------------------ schema and setup

    def _open(self) -> None:
        conn = self._conn
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _Checkpointer
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                # Switching a fresh file to WAL while another process does the same fails with "database
                # is locked" at once: SQLite does not call the busy handler there. Retry until the timeout.
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= deadline:
                    raise StoreError(f"Cannot open the kestra_nb store {self.path}: {exc}") from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path} is not a usable kestra_nb store (SQLite: {exc})") from exc

    def _versions(self) -> int:
        version: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id not in (0, APPLICATION_ID) or (version and app_id != APPLICATION_ID):
            raise StoreError(f"{self.path} is a SQLite database of another application, not a kestra_nb store")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this kestra_nb supports "
                f"({SCHEMA_VERSION}); upgrade kestra_nb to open it")
        return version

    def _migrate(self) -> None:
        if self._versions() == SCHEMA_VERSION:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between our read and our lock: read again under the lock.
            version = self._versions()
            if version == 0 and conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]:
                raise StoreError(f"{self.path} is a SQLite database of another application, not a kestra_nb store")
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        """The schema version of the open file."""
        return self._query("PRAGMA user_version")[0][0]

    # ------------------------------------------------------------------------------------- plumbing

    def _fail(self, exc: sqlite3.Error) -> StoreError:
        # SQLite's own messages ("database or disk is full", "disk I/O error") name no path
        return StoreError(f"kestra_nb store {self.path}: {exc}", public=f"the store could not be written: {exc}")

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # (a closed connection): the original error is the one worth reporting

    def _committed(self) -> None:
        # Called under the lock after each commit.
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            self._request_checkpoint()

    def _request_checkpoint(self) -> None:
        self._commits = 0
        if self._closed:
            return
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.request()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (lock taken up front), as a context; errors become StoreError."""
        with self._lock:
            cur = self._cur
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                    cur.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc
            self._committed()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._cur.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc

    # ---------------------------------------------------------------------------------------- flows

    def save_flow(self, namespace: str, flow_id: str, source: str, *, tenant: str = "main") -> FlowRecord:
        """Store `source` as the next revision (or return the latest one if the source is identical)."""
        sha = source_sha256(source)
        with self._write() as cur:
            # Revisions count on from the latest row, deleted or not: monotonic across delete and re-create.
            row = cur.execute(
                f"SELECT {_FLOW_COLUMNS}, source_sha256 FROM flows WHERE tenant = ? AND namespace = ? AND id = ? "
                "ORDER BY revision DESC LIMIT 1", (tenant, namespace, flow_id)).fetchone()
            if row is not None and not row[5] and row[7] == sha and row[3] == source:
                return _flow(row[:7])
            record = FlowRecord(namespace, flow_id, row[2] + 1 if row else 1, source, utcnow(), False, tenant)
            cur.execute("INSERT INTO flows (tenant, namespace, id, revision, source, source_sha256, deleted, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                        (tenant, namespace, flow_id, record.revision, source, sha, to_us(record.updated)))
        return record

    def get_flow(self, namespace: str, flow_id: str, revision: int | None = None, *,
                 allow_deleted: bool = False, tenant: str = "main") -> FlowRecord | None:
        """The latest (or the given) revision; None if missing, or deleted and not `allow_deleted`."""
        if revision is None:
            rows = self._query(f"SELECT {_FLOW_COLUMNS} FROM flows WHERE tenant = ? AND namespace = ? AND id = ? "
                               "ORDER BY revision DESC LIMIT 1", (tenant, namespace, flow_id))
        else:
            rows = self._query(f"SELECT {_FLOW_COLUMNS} FROM flows WHERE tenant = ? AND namespace = ? AND id = ? "
                               "AND revision = ?", (tenant, namespace, flow_id, revision))
        if not rows or (rows[0][5] and not allow_deleted):
            return None
        return _flow(rows[0])

    def delete_flow(self, namespace: str, flow_id: str, *, tenant: str = "main") -> FlowRecord | None:
        """Soft delete: write a new revision marked deleted (same source); None if there is no live flow."""
        with self._write() as cur:
            row = cur.execute("SELECT revision, source, source_sha256, deleted FROM flows WHERE tenant = ? "
                              "AND namespace = ? AND id = ? ORDER BY revision DESC LIMIT 1",
                              (tenant, namespace, flow_id)).fetchone()
            if row is None or row[3]:
                return None
            record = FlowRecord(namespace, flow_id, row[0] + 1, row[1], utcnow(), True, tenant)
            cur.execute("INSERT INTO flows (tenant, namespace, id, revision, source, source_sha256, deleted, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                        (tenant, namespace, flow_id, record.revision, row[1], row[2], to_us(record.updated)))
        return record

    def flow_revisions(self, namespace: str, flow_id: str, *, tenant: str = "main") -> list[FlowRecord]:
        """Every revision, ascending (deleted markers included)."""
        rows = self._query(f"SELECT {_FLOW_COLUMNS} FROM flows WHERE tenant = ? AND namespace = ? AND id = ? "
                           "ORDER BY revision", (tenant, namespace, flow_id))
        return [_flow(row) for row in rows]

    def list_flows(self, namespace: str | None = None, *, prefix: bool = False,
                   tenant: str = "main") -> list[FlowRecord]:
        """The latest live revision of each flow, in `namespace` exactly (or under it when `prefix`)."""
        params: list[Any] = [tenant]
        where = "tenant = ?"
        if namespace is not None:
            where += " AND " + _namespace_clause(namespace, prefix, params)
        # SQLite's bare-column rule: with max(revision), the other columns come from that same row.
        rows = self._query(
            f"SELECT {_FLOW_COLUMNS} FROM (SELECT {_FLOW_COLUMNS}, max(revision) FROM flows WHERE {where} "
            "GROUP BY namespace, id) WHERE deleted = 0 ORDER BY namespace, id", params)
        return [_flow(row) for row in rows]

    # ----------------------------------------------------------------------------------- executions

    def save_execution(self, execution: Execution, logs: Sequence[LogEntry] = (), *,
                       parts: ExecutionText | None = None, commands: Sequence[int] = ()) -> None:
        """Insert or update the execution (and append `logs`) in one transaction: its row, and the rows of the
        task runs `parts` says changed (all of them without `parts`, or when it says a full write); the
        `commands` (seqs) whose effect this is are marked done in the same transaction."""
        # The hot path: everything is computed before taking the lock; no context manager, no SELECT.
        if parts is None:
            parts = execution_json(execution)
        tenant, start, end, duration = execution_columns(execution)
        execution_id, texts = execution.id, parts.task_runs
        row = (execution_id, tenant, execution.namespace, execution.flow_id, execution.flow_revision,
               execution.state.current.value, start, end, duration, execution.parent_id,
               _labels_json(execution), f"{parts.head},{parts.tail}", self.owner, len(texts), len(parts.head))
        full = parts.changed is None
        task_rows = [(execution_id, i, texts[i]) for i in (range(len(texts)) if full else parts.changed)]
        log_rows = [_log_row(entry) for entry in logs] if logs else None
        with self._lock:
            cur = self._cur
            try:
                if log_rows is None and not task_rows and not full and not commands:
                    cur.execute(_UPSERT_EXECUTION, row)  # a single statement is its own transaction
                else:
                    cur.execute("BEGIN IMMEDIATE")
                    try:
                        cur.execute(_UPSERT_EXECUTION, row)
                        if full:
                            cur.execute("DELETE FROM task_runs WHERE execution_id = ?", (execution_id,))
                        if task_rows:
                            cur.executemany(_PUT_TASK_RUN, task_rows)
                        if log_rows is not None:
                            cur.executemany(_INSERT_LOG, log_rows)
                        if commands:
                            done = to_us(utcnow())
                            cur.executemany("UPDATE commands SET done = ? WHERE seq = ? AND done IS NULL",
                                            [(done, seq) for seq in commands])
                        cur.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc
            self._commits += 1
            if self._commits >= CHECKPOINT_EVERY:
                self._request_checkpoint()

    def _texts(self, cur: sqlite3.Cursor, rows: Sequence[tuple[Any, ...]]) -> list[str]:
        """Whole documents' texts of (id, document, task_runs, task_runs_at) rows, read in the caller's read
        transaction (so a row and its task runs come from the same commit)."""
        ids = [row[0] for row in rows if row[2]]
        runs: dict[str, list[str]] = {execution_id: [] for execution_id in ids}
        for chunk in range(0, len(ids), 500):
            some = ids[chunk:chunk + 500]
            for execution_id, text in cur.execute(
                    f"SELECT execution_id, document FROM task_runs WHERE execution_id IN "
                    f"({', '.join('?' * len(some))}) ORDER BY execution_id, seq", some):
                runs[execution_id].append(text)
        out = []
        for execution_id, document, count, at in rows:
            if not count:
                out.append(document)   # no task runs, or a row from before migration 6 (the whole document)
                continue
            texts = runs[execution_id]
            if len(texts) != count:
                raise StoreError(f"kestra_nb store {self.path}: execution {execution_id} has {len(texts)} "
                                 f"task runs stored, its row says {count}",
                                 public=f"execution {execution_id} is stored incompletely")
            out.append(join_execution(document[:at], document[at + 1:], texts))
        return out

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Cursor]:
        """One read transaction (its reads see one commit: a row and its task-run rows agree)."""
        with self._lock:
            cur = self._cur
            try:
                cur.execute("BEGIN")
                try:
                    yield cur
                finally:
                    cur.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._fail(exc) from exc

    def _read_documents(self, sql: str, params: Sequence[Any]) -> list[str]:
        """The whole texts of the executions `sql` selects (its first columns: _DOCUMENT_COLUMNS)."""
        with self._reading() as cur:
            return self._texts(cur, cur.execute(sql, params).fetchall())

    def get_execution(self, execution_id: str, *, tenant: str = "main") -> Execution | None:
        """The stored execution, or None."""
        document = self.get_execution_document(execution_id, tenant=tenant)
        return None if document is None else Execution.from_dict(document)

    def get_execution_text(self, execution_id: str, *, tenant: str = "main") -> str | None:
        """The stored JSON document's text, or None."""
        texts = self._read_documents(
            f"SELECT {_DOCUMENT_COLUMNS} FROM executions WHERE id = ? AND tenant = ?", (execution_id, tenant))
        return texts[0] if texts else None

    def get_execution_document(self, execution_id: str, *, tenant: str = "main") -> dict[str, Any] | None:
        """The stored JSON document as is (no model round trip), or None."""
        text = self.get_execution_text(execution_id, tenant=tenant)
        return None if text is None else json.loads(text)

    def execution_text_stream(self, execution_id: str, *, tenant: str = "main") -> str | Iterator[str] | None:
        """The stored JSON document's text, None if there is no such execution, or, for a document of more
        than STREAM_OVER task runs, the text in chunks, read as they are consumed, STREAM_BATCH task runs at a time, on a
        connection of its own in one read transaction (the chunks make one commit's document; the store's
        connection is not held meanwhile, and nothing but the chunk being sent is in memory). Close the
        iterator when done with it (the connection closes with it)."""
        with self._reading() as cur:
            row = cur.execute("SELECT task_runs FROM executions WHERE id = ? AND tenant = ?",
                              (execution_id, tenant)).fetchone()
        if row is None:
            return None
        if row[0] <= STREAM_OVER:
            return self.get_execution_text(execution_id, tenant=tenant)
        return self._stream(execution_id, tenant)

    def _stream(self, execution_id: str, tenant: str) -> Iterator[str]:
        try:
            conn = sqlite3.connect(Path(self.path).resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("BEGIN")
            row = conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM executions WHERE id = ? AND tenant = ?",
                               (execution_id, tenant)).fetchone()
            if row is None:
                raise NotFoundError(f"Execution '{execution_id}' not found.")
            _, document, count, at = row
            if not count:
                yield document
                return
            yield document[:at] + ',"taskRunList":['
            cursor = conn.execute("SELECT document FROM task_runs WHERE execution_id = ? ORDER BY seq",
                                  (execution_id,))
            sent = 0
            while True:
                texts = [text for (text,) in cursor.fetchmany(STREAM_BATCH)]
                if not texts:
                    break
                yield ("," if sent else "") + ",".join(texts)
                sent += len(texts)
            if sent != count:
                raise StoreError(f"kestra_nb store {self.path}: execution {execution_id} has {sent} task runs "
                                 f"stored, its row says {count}",
                                 public=f"execution {execution_id} is stored incompletely")
            yield "]," + document[at + 1:]
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        finally:
            conn.close()

    def search_executions(self, **criteria: Any) -> tuple[list[Execution], int]:
        """A page of executions and the total count (the criteria of `search_execution_documents`)."""
        documents, total = self.search_execution_documents(**criteria)
        return [Execution.from_dict(document) for document in documents], total

    def search_execution_documents(self, **criteria: Any) -> tuple[list[dict[str, Any]], int]:
        """A page of executions' JSON documents and the total count (the criteria of `search_execution_texts`)."""
        texts, total = self.search_execution_texts(**criteria)
        return [json.loads(text) for text in texts], total

    def search_execution_texts(self, *, namespace: str | None = None, namespace_prefix: bool = True,
                          flow_id: str | None = None, states: Iterable[StateType] | None = None,
                          labels: dict[str, str] | None = None, start_after: datetime | None = None,
                          start_before: datetime | None = None, sort: Sequence[tuple[str, bool]] = (),
                          page: int = 1, size: int = 10, tenant: str = "main", count: bool = True) -> tuple[list[str], int]:
        """A page of executions' JSON texts, as stored, and the total count (-1 without `count`: a scan need
        not count each page); start bounds inclusive, NULLs sort lowest."""
        check_paging(page, size)
        order = ", ".join(f"{column} {'ASC' if ascending else 'DESC'}" for column, ascending in sort_columns(sort))
        params: list[Any] = [tenant]
        clauses = ["tenant = ?"]
        names = None if states is None else sorted({StateType(s).value for s in states})
        if names == []:
            return [], 0
        _execution_filter(clauses, params, namespace, namespace_prefix, flow_id, names, start_after, start_before)
        for key, value in (labels or {}).items():
            clauses.append("EXISTS (SELECT 1 FROM json_each(executions.labels) AS l "
                           "WHERE json_extract(l.value, '$[0]') = ? AND json_extract(l.value, '$[1]') = ?)")
            params.extend((key, value))
        where = " AND ".join(clauses)
        # Filters on tenant, namespace, flow and state alone are counted by execution_counts' rows (a handful),
        # not by a scan; dates and labels need the scan.
        counted = not labels and start_after is None and start_before is None
        count_sql = (f"SELECT coalesce(sum(n), 0) FROM execution_counts WHERE {where}" if counted
                     else f"SELECT count(*) FROM executions WHERE {where}")
        with self._reading() as cur:
            total = cur.execute(count_sql, params).fetchone()[0] if count else -1
            texts = self._texts(cur, cur.execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM executions WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, size, (page - 1) * size]).fetchall())
        return texts, total

    def executions_in_states(self, states: Iterable[StateType], *, tenant: str = "main") -> list[Execution]:
        """Every execution whose current state is one of `states`, oldest first (a table scan, see schema)."""
        names = sorted({StateType(s).value for s in states})
        if not names:
            return []
        texts = self._read_documents(
            f"SELECT {_DOCUMENT_COLUMNS} FROM executions WHERE tenant = ? AND state IN ({', '.join('?' * len(names))}) "
            "ORDER BY start_date, id", [tenant, *names])
        return [Execution.from_dict(json.loads(text)) for text in texts]

    def delete_execution(self, execution_id: str, *, tenant: str = "main") -> bool:
        """Delete the execution, its logs and its files; False if it did not exist."""
        with self._write() as cur:
            row = cur.execute("SELECT namespace, flow_id FROM executions WHERE id = ? AND tenant = ?",
                              (execution_id, tenant)).fetchone()
            if row is None:
                return False
            cur.execute("DELETE FROM executions WHERE id = ? AND tenant = ?", (execution_id, tenant))
            cur.execute("DELETE FROM task_runs WHERE execution_id = ?", (execution_id,))
            cur.execute("DELETE FROM commands WHERE execution_id = ?", (execution_id,))
            cur.execute("DELETE FROM logs WHERE execution_id = ? AND tenant = ?", (execution_id, tenant))
            cur.execute("DELETE FROM metrics WHERE execution_id = ? AND tenant = ?", (execution_id, tenant))
        self.storage.delete_execution(row[0], row[1], execution_id)
        return True

    def purge_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                         start_after: datetime | None = None, start_before: datetime | None = None,
                         states: Iterable[StateType] | None = None, exclude: str | None = None,
                         executions: bool = True, logs: bool = True, metrics: bool = True, storage: bool = True,
                         tenant: str = "main") -> PurgeCounts:
        """Remove the terminated executions matching, or per flag only their logs, metrics or files: in
        batches of PURGE_BATCH executions, one write transaction each, walked in id order."""
        names = purgeable_states(states)
        if not names:
            return PurgeCounts()
        params: list[Any] = [tenant]
        clauses = ["tenant = ?"]
        _execution_filter(clauses, params, namespace, flow_id is None, flow_id, names, start_after, start_before)
        if exclude is not None:
            clauses.append("id != ?")
            params.append(exclude)
        where = " AND ".join(clauses)
        counts = [0, 0, 0, 0]
        last = ""
        while True:
            with self._write() as cur:
                rows = cur.execute(f"SELECT id, namespace, flow_id FROM executions WHERE {where} AND id > ? "
                                   "ORDER BY id LIMIT ?", [*params, last, PURGE_BATCH]).fetchall()
                ids = [row[0] for row in rows]
                if ids:
                    marks = ", ".join("?" * len(ids))
                    if logs:
                        counts[1] += cur.execute(f"DELETE FROM logs WHERE tenant = ? AND execution_id IN ({marks})",
                                                 [tenant, *ids]).rowcount
                    if metrics:
                        counts[2] += cur.execute(f"DELETE FROM metrics WHERE tenant = ? AND execution_id IN "
                                                 f"({marks})", [tenant, *ids]).rowcount
                    if executions:
                        cur.execute(f"DELETE FROM executions WHERE tenant = ? AND id IN ({marks})", [tenant, *ids])
                        cur.execute(f"DELETE FROM task_runs WHERE execution_id IN ({marks})", ids)
                        cur.execute(f"DELETE FROM commands WHERE execution_id IN ({marks})", ids)
                        counts[0] += len(ids)
            if storage:
                counts[3] += sum(self.storage.delete_execution(ns, fid, ex_id) for ex_id, ns, fid in rows)
            if len(rows) < PURGE_BATCH:
                return PurgeCounts(*counts)
            last = rows[-1][0]

    # -------------------------------------------------------------------------------------- metrics

    def append_metrics(self, metrics: Sequence[dict[str, Any]]) -> None:
        """Record metric entries (Kestra MetricEntry documents with `executionId`) in one transaction."""
        if not metrics:
            return
        rows = [(tenant_of(m.get("tenantId")), m["executionId"], m.get("taskRunId"), dumps(m)) for m in metrics]
        with self._write() as cur:
            cur.executemany("INSERT INTO metrics (tenant, execution_id, task_run_id, document) VALUES (?, ?, ?, ?)",
                            rows)

    def list_metrics(self, execution_id: str, *, task_run_id: str | None = None,
                     tenant: str = "main") -> list[dict[str, Any]]:
        """An execution's metric entries in the order recorded (optionally one task run's)."""
        sql = "SELECT document FROM metrics WHERE execution_id = ? AND tenant = ?"
        params: list[Any] = [execution_id, tenant]
        if task_run_id is not None:
            sql += " AND task_run_id = ?"
            params.append(task_run_id)
        return [json.loads(row[0]) for row in self._query(sql + " ORDER BY seq", tuple(params))]

    # ----------------------------------------------------------------------------------------- logs

    def append_logs(self, logs: Sequence[LogEntry]) -> None:
        """Append log entries in one transaction."""
        if not logs:
            return
        log_rows = [_log_row(entry) for entry in logs]
        with self._write() as cur:
            cur.executemany(_INSERT_LOG, log_rows)

    def purge_logs(self, *, namespace: str | None = None, flow_id: str | None = None,
                   levels: Iterable[Level] | None = None, start: datetime | None = None, end: datetime,
                   tenant: str = "main") -> int:
        """Remove the matching log lines in batches of 10 x PURGE_BATCH, one write transaction each."""
        params: list[Any] = [tenant, to_us(end)]
        clauses = ["tenant = ?", "timestamp <= ?"]
        for clause, value in (("timestamp >= ?", to_us(start)), ("namespace = ?", namespace), ("flow_id = ?", flow_id)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if levels is not None:
            severities = sorted({Level(level).severity for level in levels})
            if not severities:
                return 0
            clauses.append(f"level IN ({', '.join('?' * len(severities))})")
            params.extend(severities)
        sql = (f"DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE {' AND '.join(clauses)} "
               f"ORDER BY seq LIMIT {10 * PURGE_BATCH})")
        total = 0
        while True:
            with self._write() as cur:
                removed = cur.execute(sql, params).rowcount
            total += removed
            if removed < 10 * PURGE_BATCH:
                return total

    def list_logs(self, execution_id: str, *, min_level: Level | None = None, task_run_id: str | None = None,
                  task_id: str | None = None, attempt: int | None = None, tenant: str = "main") -> list[LogEntry]:
        """The execution's logs in the order they were written, filtered (`min_level` and more severe)."""
        clauses = ["execution_id = ?", "tenant = ?"]
        params: list[Any] = [execution_id, tenant]
        if min_level is not None:
            clauses.append("level >= ?")
            params.append(Level(min_level).severity)
        if task_run_id is not None:
            clauses.append("task_run_id = ?")
            params.append(task_run_id)
        if task_id is not None:
            clauses.append("task_id = ?")
            params.append(task_id)
        if attempt is not None:
            clauses.append("attempt_number = ?")
            params.append(attempt)
        rows = self._query(f"SELECT document FROM logs WHERE {' AND '.join(clauses)} ORDER BY seq", params)
        return [log_from_dict(json.loads(row[0])) for row in rows]

    # ------------------------------------------------------------------------------------------- KV

    def kv_put(self, namespace: str, key: str, value: Any, type: str, *, expiration: datetime | None = None,
               description: str | None = None, tenant: str = "main") -> KVEntry:
        """Set a key (revision + 1 each time; an expired key starts again at 1)."""
        check_kv_type(type)
        text = kv_encode(value, type)
        now = utcnow()
        now_us = to_us(now)
        with self._write() as cur:
            # Lazy purge: a namespace's expired keys go when the namespace is written to.
            cur.execute("DELETE FROM kv WHERE tenant = ? AND namespace = ? AND expiration <= ?",
                        (tenant, namespace, now_us))
            row = cur.execute("SELECT revision FROM kv WHERE tenant = ? AND namespace = ? AND key = ?",
                              (tenant, namespace, key)).fetchone()
            revision = row[0] + 1 if row else 1
            cur.execute("INSERT OR REPLACE INTO kv (tenant, namespace, key, type, value, revision, updated, "
                        "expiration, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (tenant, namespace, key, type, text, revision, now_us, to_us(expiration), description))
        return KVEntry(namespace, key, kv_decode(text, type), type, revision, now, expiration, description, tenant)

    def kv_get(self, namespace: str, key: str, *, tenant: str = "main") -> KVEntry | None:
        """The entry, or None if missing or expired."""
        rows = self._query("SELECT type, value, revision, updated, expiration, description FROM kv "
                           "WHERE tenant = ? AND namespace = ? AND key = ?", (tenant, namespace, key))
        if not rows:
            return None
        expiration = rows[0][4]
        if expiration is not None:
            now_us = to_us(utcnow())
            if expiration <= now_us:  # type: ignore[operator]
                # Lazy purge, only if still expired: another process may have set the key again meanwhile.
                with self._write() as cur:
                    cur.execute("DELETE FROM kv WHERE tenant = ? AND namespace = ? AND key = ? AND expiration <= ?",
                                (tenant, namespace, key, now_us))
                return None
        return self._entry(tenant, namespace, key, rows[0])

    def kv_delete(self, namespace: str, key: str, *, tenant: str = "main") -> bool:
        """Remove a key; False if it was not there (or had expired)."""
        with self._write() as cur:
            row = cur.execute("SELECT expiration FROM kv WHERE tenant = ? AND namespace = ? AND key = ?",
                              (tenant, namespace, key)).fetchone()
            if row is not None:
                cur.execute("DELETE FROM kv WHERE tenant = ? AND namespace = ? AND key = ?", (tenant, namespace, key))
        return row is not None and (row[0] is None or row[0] > to_us(utcnow()))

    def kv_list(self, namespace: str, *, tenant: str = "main") -> list[KVEntry]:
        """Live (unexpired) entries of a namespace, by key."""
        rows = self._query("SELECT key, type, value, revision, updated, expiration, description FROM kv "
                           "WHERE tenant = ? AND namespace = ? AND (expiration IS NULL OR expiration > ?) "
                           "ORDER BY key", (tenant, namespace, to_us(utcnow())))
        return [self._entry(tenant, namespace, row[0], row[1:]) for row in rows]

    @staticmethod
    def _entry(tenant: str, namespace: str, key: str, row: Sequence[Any]) -> KVEntry:
        type, value, revision, updated, expiration, description = row
        return KVEntry(namespace, key, kv_decode(value, type), type, revision, from_us(updated),  # type: ignore[arg-type]
                       from_us(expiration), description, tenant)

    # ------------------------------------------------------------------------------------- triggers

    _TRIGGER_COLUMNS = "namespace, flow_id, trigger_id, next_date, last_date, data, version, updated, tenant"

    @staticmethod
    def _trigger(row: Sequence[Any]) -> TriggerState:
        namespace, flow_id, trigger_id, next_date, last_date, data, version, updated, tenant = row
        return TriggerState(namespace, flow_id, trigger_id, from_us(next_date), from_us(last_date),
                            json.loads(data) if data else None, version, from_us(updated), tenant)

    def get_trigger_state(self, namespace: str, flow_id: str, trigger_id: str, *,
                          tenant: str = "main") -> TriggerState | None:
        """The stored state of one trigger, or None."""
        rows = self._query(f"SELECT {self._TRIGGER_COLUMNS} FROM triggers WHERE tenant = ? AND namespace = ? "
                           "AND flow_id = ? AND trigger_id = ?", (tenant, namespace, flow_id, trigger_id))
        return self._trigger(rows[0]) if rows else None

    def list_trigger_states(self, *, tenant: str = "main") -> list[TriggerState]:
        """Every stored trigger state of the tenant, by namespace, flow and trigger id."""
        rows = self._query(f"SELECT {self._TRIGGER_COLUMNS} FROM triggers WHERE tenant = ? "
                           "ORDER BY namespace, flow_id, trigger_id", (tenant,))
        return [self._trigger(row) for row in rows]

    def put_trigger_state(self, state: TriggerState) -> TriggerState | None:
        """Compare-and-set on the version: None when another writer changed the row first."""
        tenant = tenant_of(state.tenant_id)
        now = utcnow()
        data = dumps(state.data) if state.data else None
        key = (tenant, state.namespace, state.flow_id, state.trigger_id)
        with self._write() as cur:
            row = cur.execute("SELECT version FROM triggers WHERE tenant = ? AND namespace = ? AND flow_id = ? "
                              "AND trigger_id = ?", key).fetchone()
            if (row[0] if row else 0) != state.version:
                return None
            cur.execute("INSERT OR REPLACE INTO triggers (tenant, namespace, flow_id, trigger_id, next_date, "
                        "last_date, data, version, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*key, to_us(state.next_date), to_us(state.last_date), data, state.version + 1,
                         to_us(now)))
        return TriggerState(state.namespace, state.flow_id, state.trigger_id, state.next_date, state.last_date,
                            state.data, state.version + 1, now, tenant)

    def delete_trigger_state(self, namespace: str, flow_id: str, trigger_id: str, *, tenant: str = "main") -> bool:
        """Forget a trigger's state; False if there was none."""
        with self._write() as cur:
            cur.execute("DELETE FROM triggers WHERE tenant = ? AND namespace = ? AND flow_id = ? AND trigger_id = ?",
                        (tenant, namespace, flow_id, trigger_id))
            return cur.rowcount > 0

    def claim_trigger_mark(self, key: str, *, tenant: str = "main") -> bool:
        """Record `key` once across processes: True for the first caller only."""
        with self._write() as cur:
            cur.execute("INSERT OR IGNORE INTO trigger_marks (tenant, key, created) VALUES (?, ?, ?)",
                        (tenant, key, to_us(utcnow())))
            return cur.rowcount == 1

    def prune_trigger_marks(self, before: datetime, *, tenant: str = "main") -> int:
        """Forget the marks recorded before `before`."""
        with self._write() as cur:
            cur.execute("DELETE FROM trigger_marks WHERE tenant = ? AND created < ?", (tenant, to_us(before)))
            return cur.rowcount

    def ended_executions(self, after: datetime, *, tenant: str = "main", limit: int = 1000) -> list[EndedExecution]:
        """Executions whose end date is after `after`, oldest end first (the executions_end index)."""
        rows = self._query("SELECT id, namespace, flow_id, state, end_date FROM executions WHERE tenant = ? "
                           "AND end_date > ? ORDER BY end_date, id LIMIT ?", (tenant, to_us(after), limit))
        return [EndedExecution(i, ns, f, StateType(st), from_us(end)) for i, ns, f, st, end in rows]  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------------ lifecycle

    def data_version(self) -> int:
        """SQLite's data_version: it changes when another connection (process) commits."""
        return self._query("PRAGMA data_version")[0][0]

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` result (`ok` when the file is sound)."""
        return "\n".join(str(row[0]) for row in self._query("PRAGMA integrity_check"))

    # -------------------------------------------------------------------------------------- commands

    def put_command(self, execution_id: str, kind: str, payload: Any = None, *, tenant: str = "main") -> int:
        """Store a command for the process driving the execution; its seq."""
        with self._write() as cur:
            cur.execute("INSERT INTO commands (tenant, execution_id, kind, payload, created) VALUES (?, ?, ?, ?, ?)",
                        (tenant, execution_id, kind, None if payload is None else dumps(payload),
                         to_us(utcnow())))
            return int(cur.lastrowid)

    def pending_commands(self) -> list[StoredCommand]:
        """The commands not done yet, oldest first (a partial index holds only those)."""
        rows = self._query("SELECT seq, tenant, execution_id, kind, payload FROM commands WHERE done IS NULL "
                           "ORDER BY seq")
        return [StoredCommand(seq, tenant, execution_id, kind, None if payload is None else json.loads(payload))
                for seq, tenant, execution_id, kind, payload in rows]

    def finish_command(self, seq: int, error: dict[str, Any] | None = None) -> None:
        """Mark a command done with no effect to commit: refused (`error`), or nothing left to do."""
        with self._write() as cur:
            cur.execute("UPDATE commands SET done = ?, error = ? WHERE seq = ? AND done IS NULL",
                        (to_us(utcnow()), None if error is None else dumps(error), seq))

    def withdraw_command(self, seq: int, reason: str) -> bool:
        """Take back a command not applied yet (its sender stopped waiting): True if it was still pending."""
        with self._write() as cur:
            cur.execute("UPDATE commands SET done = ?, error = ? WHERE seq = ? AND done IS NULL",
                        (to_us(utcnow()), dumps({"type": "IllegalStateError", "message": reason}), seq))
            return cur.rowcount == 1

    def command_outcome(self, seq: int) -> tuple[bool, dict[str, Any] | None]:
        """(done, error) of a command (an unknown seq reads as done: it was deleted with its execution)."""
        rows = self._query("SELECT done, error FROM commands WHERE seq = ?", (seq,))
        if not rows:
            return True, None
        done, error = rows[0]
        return done is not None, None if error is None else json.loads(error)

    def driver(self, execution_id: str) -> str | None:
        """The owner id of the live process (this one included: `self.owner`) that owns the execution, or
        None when none does (its process died, or it was never driven)."""
        rows = self._query("SELECT owner FROM executions WHERE id = ?", (execution_id,))
        owner = rows[0][0] if rows else None
        if not owner or (owner != self.owner and not _owner_alive(self.path.parent, owner)):
            return None
        return owner

    def claim_execution(self, execution_id: str, states: Iterable[StateType]) -> Execution | None:
        """Take over one execution in `states` whose driving process has died (as `claim_orphans` does for
        all of them); None when it is not in those states or its driver lives."""
        wanted = {StateType(s).value for s in states}
        claimed = None
        with self._write() as cur:
            row = cur.execute("SELECT owner, state FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is not None and row[1] in wanted and row[0] != self.owner \
                    and not _owner_alive(self.path.parent, row[0]):
                cur.execute("UPDATE executions SET owner = ? WHERE id = ?", (self.owner, execution_id))
                rows = cur.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM executions WHERE id = ?",
                                   (execution_id,)).fetchall()
                claimed = Execution.from_dict(json.loads(self._texts(cur, rows)[0]))
        return claimed

    def claim_orphans(self, states: Iterable[StateType]) -> list[Execution]:
        """Take over the executions in `states` whose driving process has died; they are ours from now on.

        Every store holds an OS lock on `owners/<owner>.lock` under its home for as long as it is open; the
        OS releases it when the process dies (even on SIGKILL), so a lock we can take marks a dead owner.
        """
        wanted = [StateType(s).value for s in states]
        marks = ", ".join("?" for _ in wanted)
        claimed: list[Execution] = []
        with self._lock:
            cur = self._cur
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    rows = cur.execute(f"SELECT id, owner FROM executions WHERE state IN ({marks})",
                                       wanted).fetchall()
                    alive: dict[str | None, bool] = {self.owner: True}
                    dead = []
                    for execution_id, owner in rows:
                        if owner not in alive:
                            alive[owner] = _owner_alive(self.path.parent, owner)
                        if not alive[owner]:
                            cur.execute("UPDATE executions SET owner = ? WHERE id = ?", (self.owner, execution_id))
                            dead.append(execution_id)
                    for chunk in range(0, len(dead), 500):
                        some = dead[chunk:chunk + 500]
                        rows = cur.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM executions WHERE id IN "
                                           f"({', '.join('?' * len(some))}) ORDER BY start_date, id", some).fetchall()
                        claimed.extend(Execution.from_dict(json.loads(text)) for text in self._texts(cur, rows))
                    cur.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc
        return claimed

    def count_recovery(self, execution_id: str) -> int:
        """Count one more recovery attempt of the execution, committed before the attempt; the count so far."""
        with self._lock:
            try:
                self._cur.execute("UPDATE executions SET recoveries = recoveries + 1 WHERE id = ?", (execution_id,))
                row = self._cur.execute("SELECT recoveries FROM executions WHERE id = ?", (execution_id,)).fetchone()
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc
        return 0 if row is None else int(row[0])

    def forget_recoveries(self) -> None:
        """A clean stop: the recoveries of the executions this process drives were not interrupted by a crash."""
        with self._lock:
            if self._closed:
                return
            try:
                self._cur.execute("UPDATE executions SET recoveries = 0 WHERE owner = ? AND recoveries > 0",
                                  (self.owner,))
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc

    def close(self) -> None:
        """Stop the checkpoint thread and close the connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()  # before our close, so ours is the last connection and tidies the WAL
        with self._lock:
            if self._commits:
                # Our last commits may never reach CHECKPOINT_EVERY: copy them now, or a long-lived process
                # (a server) that rarely writes would let short-lived writers grow the WAL without end.
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass
            self._cur.close()
            self._conn.close()
            _release_ownership(self._owner_lock)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path.parent)!r})"


__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]
