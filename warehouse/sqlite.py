"""The SQLite warehouse: sqlite-utils for schema and transactions, the raw sqlite3 connection for bulk writes.

A batch (raw records + normalized rows + quarantine + cursor) is one transaction (`db.atomic()`), so a sync
killed at any instant leaves the warehouse as of the last committed batch, and the next run continues from the
cursor stored with it. Writes are upserts keyed by deterministic ids, so replaying a batch changes nothing.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from normalize.events import EVENT_COLUMNS
from warehouse import schema
from warehouse.base import (
    EVENT_INSERT_COLUMNS, STATE_UPSERT, Batch, LockedError, WarehouseError, dumps, group_rows, other_origins,
    state_params, tuples,
)

_CHUNK = 500  # keys per IN (...) lookup
# SQLite's page cache bounds the memory of a sync (one page of records is all Python holds): FUNNELSYNC_SQLITE_CACHE_MB
CACHE_MB = int(os.environ.get("FUNNELSYNC_SQLITE_CACHE_MB") or 12)
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", f"cache_size=-{CACHE_MB * 1024}", "temp_store=FILE")
# The rebuild after a sync (derive, KPIs) reads in index order and sorts: SQLite bounds each sorter's memory by the
# page cache size, and several sorted queries are open at once (merged by key), so it runs with a small cache:
# memory stays flat however large the warehouse, at some cost in speed (`python bench/memory.py --post-sync`: at 20x
# the data 50.9 MB and 6.9 s, against 68.3 MB and 5.2 s with the sync's 12 MB).
REBUILD_CACHE_MB = 2


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SqliteWarehouse:
    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise WarehouseError(f"warehouse directory {self.path.parent} does not exist")
        self.db = sqlite_utils.Database(str(self.path))
        self.conn = self.db.conn
        for pragma in (*PRAGMAS, "busy_timeout=10000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.migrate()

    def __repr__(self) -> str:
        return f"SqliteWarehouse({str(self.path)!r})"

    # ---- schema ----------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        existing = set(self.db.table_names())
        with self.db.atomic():
            for table in schema.TABLES:
                if table.view:  # a view (an earlier version may have kept a table of that name)
                    if table.name in existing:
                        self.conn.execute(f"DROP TABLE {table.name}")
                    for stmt in schema.ddl(table, schema.SQLITE_TYPES):
                        self.conn.execute(stmt)
                elif table.name not in existing:
                    for stmt in schema.ddl(table, schema.SQLITE_TYPES):
                        self.conn.execute(stmt)
                else:  # additive migrations: new columns and indexes
                    have = {c.name for c in self.db[table.name].columns}
                    for name, kind in table.columns:
                        if name not in have:
                            self.conn.execute(
                                f"ALTER TABLE {table.name} ADD COLUMN {name} {schema.SQLITE_TYPES[kind]}")
                    wanted = dict(table.index_statements())
                    for (name,) in self.conn.execute(
                            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name LIKE ?",
                            (table.name, f"ix_{table.name}_%")).fetchall():
                        if name not in wanted:  # an index an earlier version declared
                            self.conn.execute(f"DROP INDEX {name}")
                    for stmt in wanted.values():
                        self.conn.execute(stmt)

    # ---- lock ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, sources: list[str] | None = None) -> Iterator[None]:
        """One sync at a time per SQLite file: a non-blocking flock on `<db>.lock`, released by the OS on exit
        (kill -9 included), so a crashed sync never leaves a stale lock."""
        lock_path = f"{self.path}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(f"another funnelsync sync is running on {self.path} (lock {lock_path}); "
                                  "this run exits and the next scheduled run will continue") from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def derive_lock(self) -> Iterator[None]:
        """Around the rebuild of derived tables (funnelsync.sync.post_sync). SQLite serializes writers itself (and a
        sync holds `lock()`); this narrows the page cache, which also bounds every sorter, to REBUILD_CACHE_MB."""
        self.conn.execute(f"PRAGMA cache_size=-{REBUILD_CACHE_MB * 1024}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA cache_size=-{CACHE_MB * 1024}")

    # ---- state -----------------------------------------------------------------------------------------------

    def get_state(self, source_name: str, stream: str) -> dict | None:
        row = self.conn.execute("SELECT cursor FROM sync_state WHERE source_name = ? AND stream = ?",
                                (source_name, stream)).fetchone()
        if not row or row[0] is None:
            return None
        import json

        return json.loads(row[0])

    def reset_state(self, source_name: str, stream: str | None = None) -> None:
        with self.db.atomic():
            if stream:
                self.conn.execute("UPDATE sync_state SET cursor = NULL WHERE source_name = ? AND stream = ?",
                                  (source_name, stream))
            else:
                self.conn.execute("UPDATE sync_state SET cursor = NULL WHERE source_name = ?", (source_name,))

    # ---- the write path --------------------------------------------------------------------------------------

    def write_batch(self, batch: Batch, now: str | None = None, *, commit: bool = True) -> int:
        """Write one batch; returns the number of normalized rows written. With `commit=False` the batch joins the
        open transaction (one transaction holds many pages), which `commit()` ends; any failure rolls the whole
        open transaction back."""
        now = now or utc_now()
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
        try:
            written = self._write(batch, now)
        except BaseException:
            self.rollback()
            raise
        if commit:
            self.commit()
        return written

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _write(self, batch: Batch, now: str) -> int:
        upserts, deletes = group_rows(batch.rows)
        c = self.conn
        system, obj = batch.source_system, batch.source_object
        # 1. which of these records were loaded before: only their earlier rows need replacing
        ids = [sid for sid, _ in batch.raw]
        seen: list[str] = []
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            seen += [r[0] for r in c.execute(
                f"SELECT source_id FROM raw_records WHERE source_system = ? AND source_object = ? "
                f"AND source_id IN ({marks})", (system, obj, *chunk))]
        origins = {(system, obj, sid) for sid in seen}
        origins |= other_origins(upserts, obj)
        if origins:
            keys = sorted(origins, key=lambda o: tuple(str(x) for x in o))
            for table in schema.ORIGIN_TABLES:
                c.executemany(f"DELETE FROM {table} WHERE source_system = ? AND source_object = ? "
                              f"AND source_id = ?", keys)
        # 2. re-read windows: restated daily facts replace those days exactly
        for scope in batch.replace:  # their raw rows go too, so a re-normalize cannot bring them back
            where = "source_name = ? AND source_object = ? AND event_date BETWEEN ? AND ?"
            args = (batch.source_name, scope.source_object, scope.start, scope.end)
            c.execute(f"DELETE FROM raw_records WHERE source_system = ? AND source_object = ? AND source_id IN "
                      f"(SELECT source_id FROM events WHERE {where})", (system, obj, *args))
            c.execute(f"DELETE FROM events WHERE {where}", args)
        # 3. raw records
        c.executemany(
            "INSERT INTO raw_records (source_system, source_object, source_id, source_name, fetched_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source_system, source_object, source_id) DO UPDATE SET "
            "source_name = excluded.source_name, fetched_at = excluded.fetched_at, payload = excluded.payload",
            [(system, obj, sid, batch.source_name, now, payload) for sid, payload in batch.raw],
        )
        # 4. normalized rows
        written = 0
        for table, rows in deletes.items():
            t = schema.BY_NAME[table]
            cond = " AND ".join(f"{k} = ?" for k in t.pk)
            c.executemany(f"DELETE FROM {table} WHERE {cond}", [tuple(k.get(p) for p in t.pk) for k in rows])
        for table, rows in upserts.items():
            written += len(rows)
            if table == "events":
                self._insert_events(rows, batch.source_name, now)
            else:
                self._upsert(table, rows, batch.source_name)
        # 5. quarantine and cursor
        if batch.quarantine:
            c.executemany(
                "INSERT OR REPLACE INTO quarantine (source_name, stream, source_id, reason, record, quarantined_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(batch.source_name, batch.stream, sid, reason, rec, now) for sid, reason, rec in batch.quarantine],
            )
        # a record that loads cleanly leaves quarantine
        if seen and batch.raw:
            bad = {q[0] for q in batch.quarantine}
            good = [(batch.source_name, batch.stream, sid) for sid, _ in batch.raw if sid not in bad]
            c.executemany("DELETE FROM quarantine WHERE source_name = ? AND stream = ? AND source_id = ?", good)
        self._touch_state(batch, now, written)
        return written

    def _insert_events(self, rows: list[dict], source_name: str, now: str) -> None:
        cols = EVENT_INSERT_COLUMNS
        marks = ",".join("?" * len(cols))
        tail = (source_name, now)
        self.conn.executemany(f"INSERT OR REPLACE INTO events ({','.join(cols)}) VALUES ({marks})",
                              [row + tail for row in tuples(rows, EVENT_COLUMNS)])

    def _upsert(self, table: str, rows: list[dict], source_name: str) -> None:
        t = schema.BY_NAME[table]
        kinds = dict(t.columns)
        present = set().union(*rows)
        # only the columns some row names (others keep their stored values); source_name is the writer's
        cols = [n for n in t.column_names if n in present and n != "source_name"]
        cols += [k for k in t.pk if k not in cols]
        data = tuples(rows, cols)
        for i in [i for i, n in enumerate(cols) if kinds[n] == "JSON"]:
            data = [row if not isinstance(row[i], (dict, list)) else row[:i] + (dumps(row[i]),) + row[i + 1:]
                    for row in data]
        if "source_name" in kinds:
            cols.append("source_name")
            data = [row + (source_name,) for row in data]
        marks = ",".join("?" * len(cols))
        updates = ", ".join(f"{n} = excluded.{n}" for n in cols if n not in t.pk) or f"{t.pk[0]} = excluded.{t.pk[0]}"
        self.conn.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks}) "
                              f"ON CONFLICT ({','.join(t.pk)}) DO UPDATE SET {updates}", data)

    def _touch_state(self, batch: Batch, now: str, written: int) -> None:
        self.conn.execute(STATE_UPSERT.format(p="?"), state_params(batch, now, written))

    # ---- run bookkeeping -------------------------------------------------------------------------------------

    def start_run(self, run_id: str, source_name: str, stream: str, mode: str, now: str | None = None) -> None:
        with self.db.atomic():
            self.conn.execute(
                "INSERT OR REPLACE INTO sync_runs (run_id, source_name, stream, mode, started_at, status, "
                "rows_written, rows_quarantined, requests) VALUES (?, ?, ?, ?, ?, 'running', 0, 0, 0)",
                (run_id, source_name, stream, mode, now or utc_now()))

    def finish_run(self, run_id: str, source_name: str, stream: str, *, status: str, rows_written: int,
                   rows_quarantined: int, requests: int, error: str | None, mode: str, now: str | None = None) -> None:
        now = now or utc_now()
        with self.db.atomic():
            self.conn.execute(
                "UPDATE sync_runs SET finished_at = ?, status = ?, rows_written = ?, rows_quarantined = ?, "
                "requests = ?, error = ? WHERE run_id = ? AND source_name = ? AND stream = ?",
                (now, status, rows_written, rows_quarantined, requests, error, run_id, source_name, stream))
            if status == "success" and mode != "backfill":
                self.conn.execute(
                    "INSERT INTO sync_state (source_name, stream, last_success_at, last_run_at, last_error) "
                    "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (source_name, stream) DO UPDATE SET "
                    "last_success_at = excluded.last_success_at, last_run_at = excluded.last_run_at, last_error = NULL",
                    (source_name, stream, now, now))
            elif status != "success":
                self.conn.execute(
                    "INSERT INTO sync_state (source_name, stream, last_run_at, last_error) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (source_name, stream) DO UPDATE SET last_run_at = excluded.last_run_at, "
                    "last_error = excluded.last_error",
                    (source_name, stream, now, error))

    def status(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT s.source_name, s.stream, s.last_success_at, s.cursor, s.rows_written, s.rows_quarantined, "
            "s.last_error, s.last_run_at, (SELECT count(*) FROM quarantine q WHERE q.source_name = s.source_name "
            "AND q.stream = s.stream) FROM sync_state s ORDER BY s.source_name, s.stream").fetchall()
        keys = ("source", "stream", "last_success_at", "cursor", "rows_written", "rows_quarantined", "last_error",
                "last_run_at", "quarantined_now")
        return [dict(zip(keys, r)) for r in rows]

    # ---- reads -----------------------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()
