"""A throwaway PostgreSQL 15 server for tests (and bench/pg_load.py).

`pg_url` (session-scoped fixture) yields `postgresql://postgres@127.0.0.1:PORT/funnelsync_test`: a server started
from /usr/lib/postgresql/15/bin in a temporary data directory (trust auth, 127.0.0.1 on a free port, the unix
socket inside the data directory, fsync off), stopped and deleted at the end of the session. When
FUNNELSYNC_TEST_PG is set, that URL is used instead and nothing is started. Missing binaries FAIL the tests
(they do not skip): CI has them, and a silently skipped backend is an untested one.

`fresh_db(pg_url, name)` gives each test its own database (or schema, without CREATEDB) so tests never see each
other's tables or advisory locks.

tests/conftest.py makes the fixture global with `from tests.pg import pg_url  # noqa: E402,F401`.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

ENV_URL = "FUNNELSYNC_TEST_PG"
BIN_DIRS = (os.environ.get("FUNNELSYNC_PG_BIN", ""), "/usr/lib/postgresql/15/bin")
DB_NAME = "funnelsync_test"


class PgUnavailable(RuntimeError):
    pass


def find_bin_dir() -> Path:
    for d in BIN_DIRS:
        if d and (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
            return Path(d)
    raise PgUnavailable(
        "PostgreSQL 15 server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/15/bin. "
        "Install them (apt-get install postgresql-15) or point FUNNELSYNC_TEST_PG at a server, e.g. "
        f"{ENV_URL}=postgresql://postgres@127.0.0.1:5432/funnelsync_test")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_owner(cmd), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise PgUnavailable(f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


@contextlib.contextmanager
def running_server(db_name: str = DB_NAME) -> Iterator[str]:
    """Start a temporary PostgreSQL server; yields its URL; stops it and deletes its files afterwards."""
    import psycopg

    bin_dir = find_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="funnelsync-pg-"))
    data = root / "data"
    try:
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root, but there is no `postgres` user to run the server as") from None
            os.chown(root, pw.pw_uid, pw.pw_gid)
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
              "--no-locale", "--no-sync"], root)
        port = 0
        for attempt in range(5):  # the free port can be taken between the probe and the server's bind
            port = _free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                      "-o", opts, "start"], root)
                break
            except PgUnavailable:
                if attempt == 4:
                    log = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else ""
                    raise PgUnavailable(f"the test PostgreSQL server did not start:\n{log}") from None
        try:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{db_name}"')
            yield f"postgresql://postgres@127.0.0.1:{port}/{db_name}"
        finally:
            subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           cwd=root, capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


_STARTED = "_FUNNELSYNC_TEST_PG_STARTED"  # the server this process started (shared by every copy of the fixture)


def session_server_url() -> str:
    """FUNNELSYNC_TEST_PG, else a server started once per process and stopped at exit."""
    url = os.environ.get(ENV_URL) or os.environ.get(_STARTED)
    if url:
        return url
    server = running_server()
    url = server.__enter__()
    atexit.register(server.__exit__, None, None, None)
    os.environ[_STARTED] = url
    return url


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a PostgreSQL database for this test session (FUNNELSYNC_TEST_PG, else a throwaway server)."""
    try:
        return session_server_url()
    except PgUnavailable as exc:
        problem = str(exc)
    pytest.fail(f"PostgreSQL tests need a server: {problem}", pytrace=False)


# ---- one database per test ---------------------------------------------------------------------------------


def _with_path(url: str, dbname: str | None = None, query: str | None = None) -> str:
    parts = urlsplit(url)
    path = f"/{dbname}" if dbname is not None else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query if query is None else query, ""))


@contextlib.contextmanager
def fresh_db(url: str, name: str, database: bool = False) -> Iterator[str]:
    """A new, empty schema in `url`'s database, selected through the URL's search_path (fast: ~1 ms), or with
    database=True a new database (~0.5 s; falls back to a schema when the role may not create databases).
    Yields its URL and drops it afterwards."""
    import psycopg

    name = re.sub(r"[^a-z0-9_]", "_", name.lower())[:40] + f"_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    admin = _with_path(url, "postgres")
    if database:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        except psycopg.Error:
            database = False
    if database:
        try:
            yield _with_path(url, name)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    query = urlsplit(url).query
    query = (query + "&" if query else "") + "options=" + quote(f"-csearch_path={name}")
    try:
        yield _with_path(url, query=query)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# ---- table contents, comparable across backends --------------------------------------------------------------

VOLATILE = frozenset({"ingested_at", "fetched_at", "quarantined_at", "last_run_at", "last_success_at", "rows_written",
                      "rows_quarantined"})


def _canon(value, kind: str):
    if kind == "JSON" and isinstance(value, str):
        import json

        try:
            return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return value
    if kind == "REAL" and isinstance(value, int):
        return float(value)
    return value


def snapshot(conn, tables=None, skip_columns=VOLATILE, skip_tables=frozenset({"sync_runs"})) -> dict[str, list]:
    """{table: sorted rows} of the warehouse tables through a DB-API connection (SQLite, or a PostgreSQL
    connection from warehouse.postgres.connect), volatile columns left out, JSON compared canonically."""
    from warehouse import schema

    out = {}
    for t in schema.TABLES:
        if t.name in skip_tables or (tables is not None and t.name not in tables):
            continue
        cols = [(c, k) for c, k in t.columns if c not in skip_columns]
        cur = conn.cursor()
        cur.execute(f"SELECT {', '.join(c for c, _ in cols)} FROM {t.name}")
        rows = [tuple(_canon(v, k) for v, (_, k) in zip(r, cols)) for r in cur.fetchall()]
        out[t.name] = sorted(rows, key=repr)
    if hasattr(conn, "rollback"):
        conn.rollback()
    return out
