"""The PostgreSQL warehouse: the same interface and write semantics as warehouse/sqlite.py, with psycopg 3.

- Tables of warehouse/schema.py with PG types (timestamptz, date, jsonb). Writers pass the same UTC texts
  (`YYYY-MM-DDTHH:MM:SSZ`, `YYYY-MM-DD`, JSON text) as on SQLite; PostgreSQL parses them into the typed columns.
  Reads through `conn` give them back as SQLite does: timestamptz as `YYYY-MM-DDTHH:MM:SSZ` text, date as
  `YYYY-MM-DD`, json/jsonb as compact key-sorted JSON text (the form `warehouse.base.dumps` writes), numeric as
  float (the session runs in UTC, ISO dates).
- A batch is one transaction: every table's rows are COPYed into a temporary staging table (ON COMMIT DROP),
  then merged with one `INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE ... IS DISTINCT FROM ...`
  per table, so unchanged rows are not rewritten. Origin replacement, re-read windows, quarantine and the cursor
  follow SqliteWarehouse.write_batch exactly. A deadlock / serialization failure retries the whole batch; text
  PostgreSQL cannot store (NUL characters, `\\u0000` or NaN in JSON, booleans in numeric columns, '' in typed
  columns) is cleaned and the batch retried once; a row that still does not fit fails the stream with the
  server's message (WarehouseError).
- Locks are per source: `lock(sources)` takes a session-level advisory lock per source on its own connection, so
  syncs of different sources run in parallel and two syncs of one source exclude each other (LockedError, exit
  75). The server releases them when the process ends, kill -9 included. `derive_lock()` serializes the rebuild of
  the derived tables (people, kpi_values, ...) between such parallel syncs (funnelsync.sync.post_sync must hold it).
- Differences from SQLite: `raw_records.fetched_at` / `events.ingested_at` only move when the row's content
  changes (unchanged rows are not rewritten); opportunity_links has UNIQUE instead of PRIMARY KEY, because
  `person_ref` may be NULL (SQLite allows NULL in a primary key, PostgreSQL does not), with SQLite's NULL semantics.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pgerr
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus

from normalize.events import EVENT_COLUMNS
from warehouse import schema
from warehouse.base import (
    STATE_UPSERT, Batch, LockedError, WarehouseError, dumps, group_rows, other_origins, state_params, tuples,
)

# Advisory lock keys: sources use the one-bigint key space (hashtext('funnelsync:' || name), as documented);
# warehouse-internal locks use the two-int4 space with this first key, so no source name can collide with them.
LOCK_SPACE = 0x66_73_79  # "fsy"
NULLABLE_KEY_TABLES = frozenset({"opportunity_links"})  # UNIQUE (key) instead of PRIMARY KEY: see module doc
RETRIES = 3

IDLE, INTRANS, INERROR = TransactionStatus.IDLE, TransactionStatus.INTRANS, TransactionStatus.INERROR


class WarehouseUnavailable(WarehouseError):
    """The server went away or refused us mid-run: temporary, the next run continues."""

    exit_code = 75


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- reading values back as SQLite holds them ---------------------------------------------------------------


class _TimestampText(Loader):
    """timestamptz -> `YYYY-MM-DDTHH:MM:SSZ` (the session time zone is UTC; sub-seconds truncated)."""

    def load(self, data):
        s = bytes(data).decode()
        if len(s) >= 19 and s[10] == " " and s[4] == "-":
            tail = s[19:]
            if tail.endswith("+00") or "+" not in tail and "-" not in tail:  # UTC, or a plain timestamp
                return f"{s[:10]}T{s[11:19]}Z"
            try:
                dt = datetime.fromisoformat(s)
            except ValueError:
                return s
            return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return s  # infinity, BC dates, years past 9999


class _Text(Loader):
    def load(self, data):
        return bytes(data).decode()


class _JsonText(Loader):
    def load(self, data):
        s = bytes(data).decode()
        try:
            return json.dumps(json.loads(s), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return s


class _Float(Loader):
    def load(self, data):
        return float(bytes(data))


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """A connection set up like the warehouse's: UTC, ISO dates, SQLite-like values on read."""
    conn = psycopg.connect(url, autocommit=True, **{"application_name": "funnelsync", **kwargs})
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET datestyle = 'ISO, YMD'")
    conn.execute("SET temp_buffers = '64MB'")  # staging tables of a 50k-row batch stay in memory
    for name in ("timestamptz", "timestamp"):
        conn.adapters.register_loader(name, _TimestampText)
    conn.adapters.register_loader("date", _Text)
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, _JsonText)
    conn.adapters.register_loader("numeric", _Float)
    conn.autocommit = False
    return conn


def pg_ddl(table: schema.Table) -> list[str]:
    stmts = schema.ddl(table, schema.PG_TYPES)
    if table.name in NULLABLE_KEY_TABLES and table.pk:
        key = f"PRIMARY KEY ({', '.join(table.pk)})"
        stmts[0] = stmts[0].replace(key, f"CONSTRAINT {table.name}_key UNIQUE ({', '.join(table.pk)})")
    return stmts


# ---- cleaning values PostgreSQL refuses (only on the retry after a data error) -------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_str(v: str) -> str:
    v = v.replace("\x00", "")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from "\ud800" escapes): not storable text
        v = _SURROGATE.sub("\ufffd", v)
    return v


def _clean_json_value(v: Any) -> Any:
    if isinstance(v, str):
        return _clean_str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {_clean_json_value(k): _clean_json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean_json_value(x) for x in v]
    return v


def _clean(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "JSON":
        if not isinstance(value, str):
            return dumps(_clean_json_value(value))
        try:
            return dumps(_clean_json_value(json.loads(value)))
        except ValueError:
            return json.dumps(_clean_str(value))  # not JSON at all: keep it as a JSON string
    if isinstance(value, bool):  # SQLite stores True as 1
        return int(value) if kind != "TEXT" else str(int(value))
    if isinstance(value, (dict, list)):
        value = dumps(value)
    if isinstance(value, str):
        value = _clean_str(value)
        if kind != "TEXT" and not value.strip():
            return None
    return value


# bad values in a COPY row / unadaptable Python types / text Python cannot encode
_DATA_ERRORS = (pgerr.DataError, pgerr.ProgrammingError, UnicodeEncodeError)
_RETRY_ERRORS = (pgerr.DeadlockDetected, pgerr.SerializationFailure, pgerr.LockNotAvailable)


def _describe(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    where = getattr(diag, "context", None) if diag else None
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{msg} ({where.strip().splitlines()[0]})" if where else msg


class PostgresWarehouse:
    dialect = "postgres"

    def __init__(self, url: str):
        self.url = url
        self.conn = connect(url)
        self._lock_conn: psycopg.Connection | None = None
        self._open = False  # a write_batch(commit=False) transaction is open
        self.migrate()

    def __repr__(self) -> str:
        p = urlsplit(self.url)
        return f"PostgresWarehouse('{p.scheme}://{p.hostname or ''}{':' + str(p.port) if p.port else ''}{p.path}')"

    # ---- transactions ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor]:
        """One committed transaction. psycopg opens a transaction on any statement (reads included) and would
        turn `conn.transaction()` into a mere savepoint inside it, so leftovers are settled first."""
        self._settle()
        with self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    def _live(self) -> None:
        if self.conn.broken:  # the server restarted or dropped us: start over on a new connection
            self.conn = connect(self.url)

    def _read(self, sql: str, params: tuple | dict | list = ()) -> list[tuple]:
        """Run one statement; when no transaction was open, end the one it opened (the connection stays idle)."""
        self._live()
        idle = self.conn.info.transaction_status == IDLE
        try:
            cur = self.conn.execute(sql, params)
            rows = cur.fetchall() if cur.description is not None else []
        except BaseException:
            if idle:
                self.conn.rollback()
            raise
        if idle:
            self.conn.commit()
        return rows

    # ---- schema ----------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create missing tables, columns and indexes (additive). Serialized across processes; a warehouse that
        is up to date runs no DDL, so starting a sync never waits on another one's writes."""
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext('migrate'))", (LOCK_SPACE,))
            cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema()")
            have: dict[str, set[str]] = {}
            for t, c in cur.fetchall():
                have.setdefault(t, set()).add(c)
            cur.execute("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema()")
            indexes = {r[1]: r[0] for r in cur.fetchall()}
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                        "AND table_type = 'BASE TABLE'")
            tables = {r[0] for r in cur.fetchall()}
            for table in schema.TABLES:
                stmts = pg_ddl(table)
                if table.view:  # a view (an earlier version may have kept a table of that name)
                    if table.name in tables:
                        cur.execute(f"DROP TABLE {table.name}")
                    if table.name in tables or table.name not in have:
                        for stmt in stmts:
                            cur.execute(stmt)
                    continue
                if table.name not in have:
                    for stmt in stmts:
                        cur.execute(stmt)
                    continue
                for name, kind in table.columns:
                    if name not in have[table.name]:
                        cur.execute(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {name} {schema.PG_TYPES[kind]}")
                wanted = dict(table.index_statements())
                for name, on in indexes.items():
                    if on == table.name and name.startswith(f"ix_{table.name}_") and name not in wanted:
                        cur.execute(f"DROP INDEX {name}")  # an index an earlier version declared
                for name, stmt in wanted.items():
                    if name not in indexes:
                        cur.execute(stmt)

    # ---- locks -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, sources: list[str] | None = None) -> Iterator[None]:
        """Session-level advisory locks on a dedicated connection: one per source
        (`hashtext('funnelsync:' || source)`), plus the warehouse-wide lock in shared mode. `lock()` without
        sources takes the warehouse-wide lock exclusively (like SQLite's file lock). Non-blocking: a lock held by
        another session raises LockedError. Released on exit; the server releases them if the process dies."""
        names = sorted({str(s) for s in (sources or [])})
        conn = psycopg.connect(self.url, autocommit=True, application_name="funnelsync-lock")
        try:
            mode = "pg_try_advisory_lock_shared" if names else "pg_try_advisory_lock"
            if not conn.execute(f"SELECT {mode}(%s, hashtext('warehouse'))", (LOCK_SPACE,)).fetchone()[0]:
                raise LockedError("another funnelsync sync is running on this PostgreSQL warehouse "
                                  f"({'a whole-warehouse operation' if names else 'some source'} holds its lock); "
                                  "this run exits and the next scheduled run will continue")
            for name in names:
                if not conn.execute("SELECT pg_try_advisory_lock(hashtext('funnelsync:' || %s))", (name,)).fetchone()[0]:
                    raise LockedError(f"another funnelsync sync is running for source {name!r} on this PostgreSQL "
                                      "warehouse (advisory lock held); this run exits and the next scheduled run "
                                      "will continue")
            self._lock_conn = conn
            yield
        finally:
            self._lock_conn = None
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(psycopg.Error):
                conn.close()

    @contextlib.contextmanager
    def derive_lock(self, timeout_s: int = 600) -> Iterator[None]:
        """Serializes the rebuild of derived tables (people, kpi_values, ...) between parallel syncs of different
        sources: it blocks (up to timeout_s) while another process rebuilds them."""
        conn = psycopg.connect(self.url, autocommit=True, application_name="funnelsync-derive-lock")
        try:
            conn.execute(f"SET lock_timeout = '{int(timeout_s)}s'")
            try:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext('derive'))", (LOCK_SPACE,))
            except pgerr.LockNotAvailable:
                raise LockedError(f"another funnelsync process has been rebuilding the derived tables for over "
                                  f"{timeout_s} s") from None
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    # ---- state -----------------------------------------------------------------------------------------------

    def get_state(self, source_name: str, stream: str) -> dict | None:
        rows = self._read("SELECT cursor FROM sync_state WHERE source_name = %s AND stream = %s", (source_name, stream))
        if not rows or rows[0][0] is None:
            return None
        return json.loads(rows[0][0])

    def reset_state(self, source_name: str, stream: str | None = None) -> None:
        with self._tx() as cur:
            if stream:
                cur.execute("UPDATE sync_state SET cursor = NULL WHERE source_name = %s AND stream = %s",
                            (source_name, stream))
            else:
                cur.execute("UPDATE sync_state SET cursor = NULL WHERE source_name = %s", (source_name,))

    # ---- the write path --------------------------------------------------------------------------------------

    def write_batch(self, batch: Batch, now: str | None = None, *, commit: bool = True) -> int:
        """Write one batch; returns the number of normalized rows written (as SqliteWarehouse). With
        `commit=False` the batch joins the open transaction (one transaction holds many pages), which `commit()`
        ends. Each batch runs in a savepoint, so a deadlock or a refused value retries that batch alone; a failure
        it cannot retry rolls the whole open transaction back."""
        now = now or utc_now()
        upserts, deletes = group_rows(batch.rows)
        if not self._open:
            self._settle()
            self._open = True
        clean = False
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    with self.conn.cursor() as cur:
                        cur.execute("SAVEPOINT funnelsync_batch")
                        written = self._write(cur, batch, now, upserts, deletes, clean)
                        cur.execute("RELEASE SAVEPOINT funnelsync_batch")
                    break
                except _RETRY_ERRORS:
                    self.conn.execute("ROLLBACK TO SAVEPOINT funnelsync_batch")
                    if attempt > RETRIES:
                        raise WarehouseUnavailable("the batch kept conflicting with concurrent writers "
                                                   "(deadlock / serialization failure); the next run retries it") \
                            from None
                except _DATA_ERRORS as exc:
                    self.conn.execute("ROLLBACK TO SAVEPOINT funnelsync_batch")
                    if clean:
                        raise WarehouseError(f"PostgreSQL refused a row of stream {batch.stream!r}: "
                                             f"{_describe(exc)}") from None
                    clean = True
                except pgerr.IntegrityError as exc:
                    raise WarehouseError(f"PostgreSQL refused a row of stream {batch.stream!r}: {_describe(exc)}") \
                        from None
                except psycopg.OperationalError as exc:
                    raise WarehouseUnavailable(f"lost the PostgreSQL warehouse: {_describe(exc)}") from None
        except BaseException:
            self.rollback()
            raise
        if commit:
            self.commit()
        return written

    def _settle(self) -> None:
        """Start from an idle connection: psycopg opens a transaction on any statement (reads included)."""
        self._live()
        status = self.conn.info.transaction_status
        if status == INERROR:
            self.conn.rollback()
        elif status == INTRANS:
            self.conn.commit()

    def commit(self) -> None:
        self._open = False
        if not self.conn.broken and self.conn.info.transaction_status != IDLE:
            self.conn.commit()

    def rollback(self) -> None:
        self._open = False
        if not self.conn.broken and self.conn.info.transaction_status != IDLE:
            self.conn.rollback()

    def _write(self, cur: psycopg.Cursor, batch: Batch, now: str, upserts: dict[str, list[dict]],
               deletes: dict[str, list[dict]], clean: bool) -> int:
        system, obj = batch.source_system, batch.source_object
        raw = dict(batch.raw)  # a record twice in one batch: the latest version wins
        # 1. which of these records were loaded before: only their earlier rows need replacing
        seen: list[str] = []
        if raw:
            cur.execute("SELECT source_id FROM raw_records WHERE source_system = %s AND source_object = %s "
                        "AND source_id = ANY(%s)", (system, obj, list(raw)))
            seen = [r[0] for r in cur.fetchall()]
        origins = {(system, obj, sid) for sid in seen}
        origins |= other_origins(upserts, obj)
        if origins:
            groups: dict[tuple, list[str]] = {}
            for ss, so, sid in origins:
                if ss is not None and so is not None and sid is not None:
                    groups.setdefault((str(ss), str(so)), []).append(str(sid))
            for (ss, so), ids in sorted(groups.items()):
                ids.sort()
                for table in schema.ORIGIN_TABLES:
                    cur.execute(f"DELETE FROM {table} WHERE source_system = %s AND source_object = %s "
                                f"AND source_id = ANY(%s)", (ss, so, ids))
        # 2. re-read windows: restated daily facts replace those days exactly; their raw rows go too, so a
        #    re-normalize cannot bring them back
        for scope in batch.replace:
            where = "source_name = %s AND source_object = %s AND event_date BETWEEN %s AND %s"
            args = (batch.source_name, scope.source_object, scope.start, scope.end)
            cur.execute(f"DELETE FROM raw_records WHERE source_system = %s AND source_object = %s AND source_id IN "
                        f"(SELECT source_id FROM events WHERE {where})", (system, obj, *args))
            cur.execute(f"DELETE FROM events WHERE {where}", args)
        # 3. raw records
        if raw:
            rows = sorted(raw.items())
            if clean:
                rows = [(sid, _clean(p, "JSON")) for sid, p in rows]
            stg = self._stage(cur, "raw_records", [("source_id", "TEXT"), ("payload", "JSON")], rows)
            cur.execute(
                "INSERT INTO raw_records (source_system, source_object, source_id, source_name, fetched_at, payload) "
                f"SELECT %s, %s, source_id, %s, %s, payload FROM {stg} "
                "ON CONFLICT (source_system, source_object, source_id) DO UPDATE SET "
                "source_name = excluded.source_name, fetched_at = excluded.fetched_at, payload = excluded.payload "
                "WHERE (raw_records.source_name, raw_records.payload) IS DISTINCT FROM "
                "(excluded.source_name, excluded.payload)",
                (system, obj, batch.source_name, now))
        # 4. normalized rows: deletes first, then upserts (a row and its Delete in one batch: the row stays)
        written = 0
        for table, keys in deletes.items():
            self._delete_keys(cur, schema.BY_NAME[table], keys)
        for table, rows in upserts.items():
            written += len(rows)
            self._merge(cur, table, rows, batch.source_name, now, clean)
        # 5. quarantine and cursor
        if batch.quarantine:
            q = {sid: (reason, rec) for sid, reason, rec in batch.quarantine}
            cur.executemany(
                "INSERT INTO quarantine (source_name, stream, source_id, reason, record, quarantined_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (source_name, stream, source_id) DO UPDATE SET "
                "reason = excluded.reason, record = excluded.record, quarantined_at = excluded.quarantined_at",
                [(batch.source_name, batch.stream, sid, _clean(reason, "TEXT") if clean else reason,
                  _clean(rec, "JSON") if clean else rec, now) for sid, (reason, rec) in sorted(q.items())],
            )
        # a record that loads cleanly leaves quarantine
        if seen and batch.raw:
            bad = {q[0] for q in batch.quarantine}
            good = sorted({sid for sid, _ in batch.raw if sid not in bad})
            cur.execute("DELETE FROM quarantine WHERE source_name = %s AND stream = %s AND source_id = ANY(%s)",
                        (batch.source_name, batch.stream, good))
        self._touch_state(cur, batch, now, written)
        return written

    def _stage(self, cur: psycopg.Cursor, name: str, cols: list[tuple[str, str]], rows: Iterable[tuple]) -> str:
        """COPY rows into a temporary table dropped at commit; returns its name."""
        stg = f"_stg_{name}"
        cur.execute(f"DROP TABLE IF EXISTS pg_temp.{stg}")  # an earlier batch of the open transaction made one
        cur.execute(f"CREATE TEMP TABLE {stg} ({', '.join(f'{c} {schema.PG_TYPES[k]}' for c, k in cols)}) "
                    "ON COMMIT DROP")
        with cur.copy(f"COPY {stg} ({', '.join(c for c, _ in cols)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        return stg

    def _merge(self, cur: psycopg.Cursor, table: str, rows: list[dict], source_name: str, now: str,
               clean: bool) -> None:
        t = schema.BY_NAME[table]
        kinds = dict(t.columns)
        has_source = "source_name" in kinds
        if table == "events":
            # a full replace of the row, as SQLite's INSERT OR REPLACE (NULL quantity -> its default 1)
            cols = list(EVENT_COLUMNS)
            consts = [("source_name", source_name), ("ingested_at", now)]
            compare_skip = {"ingested_at"}
        else:
            # only the columns some row names (others keep their stored values), as SqliteWarehouse._upsert
            present: set[str] = set()
            for r in rows:
                present.update(r)
            cols = [n for n in t.column_names if n in present and not (n == "source_name" and has_source)]
            for k in t.pk:
                if k not in cols:
                    cols.append(k)
            consts = [("source_name", source_name)] if has_source else []
            compare_skip = set()
        # one row per key (the last wins, as executemany would leave it); rows with a NULL key never conflict
        pk_idx = [cols.index(k) for k in t.pk]
        data = tuples(rows, cols)
        if clean:
            ck = [kinds[c] for c in cols]
            data = [tuple(_clean(v, k) for v, k in zip(row, ck)) for row in data]
        elif table != "events":
            data = [tuple(dumps(v) if isinstance(v, (dict, list)) else v for v in row) for row in data]
        else:  # events come from normalize.events.event(): only `properties` may need it
            for i in (i for i, c in enumerate(cols) if kinds[c] == "JSON"):
                for n in [n for n, row in enumerate(data) if isinstance(row[i], (dict, list))]:
                    data[n] = data[n][:i] + (dumps(data[n][i]),) + data[n][i + 1:]
        if len(pk_idx) == 1:
            i = pk_idx[0]
            keyed = {row[i]: row for row in data if row[i] is not None}
            nulls = [row for row in data if row[i] is None]
            try:
                order = sorted(keyed)
            except TypeError:
                order = sorted(keyed, key=str)
            ordered = [keyed[k] for k in order] + nulls
        else:
            keyed2: dict[tuple, tuple] = {}
            nulls = []
            for row in data:
                key = tuple(row[i] for i in pk_idx)
                if None in key:
                    nulls.append(row)
                else:
                    keyed2[key] = row
            ordered = [keyed2[k] for k in sorted(keyed2, key=lambda k: tuple(map(str, k)))] + nulls
        stg = self._stage(cur, table, [(c, kinds[c]) for c in cols], ordered)
        all_cols = cols + [c for c, _ in consts]
        select = [("COALESCE(quantity, 1)" if (table == "events" and c == "quantity") else c) for c in cols]
        select += [f"%s::{schema.PG_TYPES[kinds[c]]}" for c, _ in consts]
        update = [c for c in all_cols if c not in t.pk]
        compared = [c for c in update if c not in compare_skip]
        if update:
            conflict = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)} "
                        f"WHERE ({', '.join(f'{table}.{c}' for c in compared)}) IS DISTINCT FROM "
                        f"({', '.join(f'excluded.{c}' for c in compared)})") if len(compared) > 1 else (
                f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)} "
                f"WHERE {table}.{compared[0]} IS DISTINCT FROM excluded.{compared[0]}") if compared else (
                f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)}")
        else:
            conflict = "DO NOTHING"
        cur.execute(f"INSERT INTO {table} ({', '.join(all_cols)}) SELECT {', '.join(select)} FROM {stg} "
                    f"ON CONFLICT ({', '.join(t.pk)}) {conflict}", tuple(v for _, v in consts))

    def _delete_keys(self, cur: psycopg.Cursor, t: schema.Table, keys: list[dict]) -> None:
        kinds = dict(t.columns)
        arrays = [[None if k.get(p) is None else str(k.get(p)) for k in keys] for p in t.pk]
        cond = " AND ".join(f"t.{p} = d.{p}" + ("" if kinds[p] == "TEXT" else f"::{schema.PG_TYPES[kinds[p]]}")
                            for p in t.pk)
        cur.execute(f"DELETE FROM {t.name} t USING unnest({', '.join(['%s::text[]'] * len(t.pk))}) "
                    f"AS d({', '.join(t.pk)}) WHERE {cond}", arrays)

    def _touch_state(self, cur: psycopg.Cursor, batch: Batch, now: str, written: int) -> None:
        cur.execute(STATE_UPSERT.format(p="%s"), state_params(batch, now, written))

    # ---- run bookkeeping -------------------------------------------------------------------------------------

    def start_run(self, run_id: str, source_name: str, stream: str, mode: str, now: str | None = None) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO sync_runs (run_id, source_name, stream, mode, started_at, status, rows_written, "
                "rows_quarantined, requests) VALUES (%s, %s, %s, %s, %s, 'running', 0, 0, 0) "
                "ON CONFLICT (run_id, source_name, stream) DO UPDATE SET mode = excluded.mode, "
                "started_at = excluded.started_at, finished_at = NULL, status = excluded.status, rows_written = 0, "
                "rows_quarantined = 0, requests = 0, error = NULL",
                (run_id, source_name, stream, mode, now or utc_now()))

    def finish_run(self, run_id: str, source_name: str, stream: str, *, status: str, rows_written: int,
                   rows_quarantined: int, requests: int, error: str | None, mode: str, now: str | None = None) -> None:
        now = now or utc_now()
        with self._tx() as cur:
            cur.execute(
                "UPDATE sync_runs SET finished_at = %s, status = %s, rows_written = %s, rows_quarantined = %s, "
                "requests = %s, error = %s WHERE run_id = %s AND source_name = %s AND stream = %s",
                (now, status, rows_written, rows_quarantined, requests, error, run_id, source_name, stream))
            if status == "success" and mode != "backfill":
                cur.execute(
                    "INSERT INTO sync_state (source_name, stream, last_success_at, last_run_at, last_error) "
                    "VALUES (%s, %s, %s, %s, NULL) ON CONFLICT (source_name, stream) DO UPDATE SET "
                    "last_success_at = excluded.last_success_at, last_run_at = excluded.last_run_at, "
                    "last_error = NULL",
                    (source_name, stream, now, now))
            elif status != "success":
                cur.execute(
                    "INSERT INTO sync_state (source_name, stream, last_run_at, last_error) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (source_name, stream) DO UPDATE SET last_run_at = excluded.last_run_at, "
                    "last_error = excluded.last_error",
                    (source_name, stream, now, error))

    def status(self) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT s.source_name, s.stream, s.last_success_at, s.cursor, s.rows_written, s.rows_quarantined, "
            "s.last_error, s.last_run_at, (SELECT count(*) FROM quarantine q WHERE q.source_name = s.source_name "
            "AND q.stream = s.stream) FROM sync_state s ORDER BY s.source_name COLLATE \"C\", s.stream COLLATE \"C\"")
        keys = ("source", "stream", "last_success_at", "cursor", "rows_written", "rows_quarantined", "last_error",
                "last_run_at", "quarantined_now")
        return [dict(zip(keys, r)) for r in rows]

    # ---- reads -----------------------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        """PostgreSQL SQL with %s / %(name)s placeholders; values come back as on SQLite (see module doc)."""
        return self._read(sql, params)

    def close(self) -> None:
        """Like sqlite3: work not committed on `conn` is discarded."""
        self.conn.close()
