"""The run loop's guarantees on PostgreSQL, end to end through the real CLI (tests/harness.py with the fake
connector, `[warehouse] url` = a PostgreSQL schema of the session's server):
kill -9 at any instant then resume == one uninterrupted sync; a second sync changes nothing; the result equals
the SQLite backend's; syncs of different sources run in parallel while a second sync of the same source exits 75.

Kill points: the harness's own checkpoints (after a page is read) plus ones this file adds around
PostgresWarehouse.write_batch and commit (before BEGIN / after COMMIT) and its per-table merge (inside the transaction).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pg import fresh_db, pg_url, snapshot  # noqa: F401  (pg_url: until tests/conftest.py imports it)
from warehouse.postgres import connect

pytestmark = pytest.mark.postgres
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
HARNESS = ROOT / "tests" / "harness.py"

# Runs tests/harness.py in this process after adding PostgreSQL checkpoints (PG_KILL_AT) and, for the lock tests,
# a barrier (PG_BARRIER=dir): once a sync holds its locks it leaves `<dir>/<pid>.locked` and waits for `<dir>/go`.
WRAPPER = r"""
import contextlib, os, runpy, signal, sys, time
root, harness = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
from warehouse import postgres as wpg

KILL_AT = int(os.environ.get("PG_KILL_AT", "0"))
count = 0

def checkpoint():
    global count
    count += 1
    if KILL_AT and count == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(name):
    real = getattr(wpg.PostgresWarehouse, name)
    def wrapped(self, *a, **kw):
        checkpoint()
        out = real(self, *a, **kw)
        checkpoint()
        return out
    setattr(wpg.PostgresWarehouse, name, wrapped)

wrap("write_batch")  # before / after a page joins the open transaction
wrap("commit")       # before / after COMMIT
wrap("_merge")       # inside the transaction, between tables

barrier = os.environ.get("PG_BARRIER")
if barrier:
    real_lock = wpg.PostgresWarehouse.lock
    @contextlib.contextmanager
    def lock(self, sources=None):
        with real_lock(self, sources):
            open(os.path.join(barrier, f"{os.getpid()}.locked"), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(barrier, "go")) and time.monotonic() < deadline:
                time.sleep(0.02)
            yield
    wpg.PostgresWarehouse.lock = lock

sys.argv = [harness] + sys.argv[3:]
runpy.run_path(harness, run_name="__main__")
"""


def write_config(tmp: Path, url: str, sources: dict[str, dict] | None = None) -> Path:
    sources = sources if sources is not None else {"f": {}}
    text = f'[warehouse]\nurl = "{url}"\n'
    for name, opts in sources.items():
        text += f'\n[sources.{name}]\ntype = "fake"\nstart_date = "2024-01-01"\n'
        text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in opts.items())
    cfg = tmp / "funnelsync.toml"
    cfg.write_text(text)
    return cfg


def _cmd(cfg: Path, args: tuple[str, ...], kill_at: int) -> list[str]:
    return [sys.executable, "-c", WRAPPER, str(ROOT), str(HARNESS), str(kill_at), "--config", str(cfg), *args]


def _env(env: dict | None) -> dict:
    return {**os.environ, "FUNNELSYNC_NOW": "2024-04-01T00:00:00Z", **(env or {})}


def run(cfg: Path, *args: str, kill_at: int = 0, pg_kill_at: int = 0, env: dict | None = None):
    e = _env({**(env or {}), "PG_KILL_AT": str(pg_kill_at)})
    return subprocess.run(_cmd(cfg, args, kill_at), capture_output=True, text=True, env=e, timeout=180, check=False)


def pg_snapshot(url: str) -> dict:
    conn = connect(url)
    try:
        return snapshot(conn)
    finally:
        conn.close()


@pytest.fixture
def url(pg_url, request):  # noqa: F811
    with fresh_db(pg_url, request.node.name[:30]) as u:
        yield u


@pytest.fixture(scope="module")
def reference(pg_url, tmp_path_factory) -> dict:  # noqa: F811
    tmp = tmp_path_factory.mktemp("pgref")
    with fresh_db(pg_url, "reference") as u:
        done = run(write_config(tmp, u), "sync", "f")
        assert done.returncode == 1, done.stderr  # record 77 is quarantined on purpose
        assert "warning" not in done.stderr, done.stderr  # derive / KPI refresh ran on PostgreSQL too
        return pg_snapshot(u)


def test_uninterrupted_sync_loads_everything_and_quarantines_the_bad_record(reference):
    items = [r for r in reference["raw_records"] if r[1] == "item"]
    assert len(items) == 300
    assert len([e for e in reference["events"] if e[1] == "form_submitted"]) == 299
    assert len([e for e in reference["events"] if e[1] == "ad_clicks"]) == 91
    (q,) = reference["quarantine"]
    assert q[:3] == ("f", "items", "r00077") and "malformed on purpose" in q[3]
    cursors = {r[1]: json.loads(r[3]) for r in reference["sync_state"]}
    assert cursors == {"items": {"cursor": "2024-01-01T01:39:00Z"}, "daily": {"last_day": "2024-03-31"}}


def test_same_warehouse_contents_as_the_sqlite_backend(reference, tmp_path):
    cfg = write_config(tmp_path, "sqlite:///wh.db")
    done = run(cfg, "sync", "f")
    assert done.returncode == 1, done.stderr
    import sqlite3

    conn = sqlite3.connect(tmp_path / "wh.db")
    lite = snapshot(conn)
    conn.close()
    assert lite.keys() == reference.keys()
    for table in lite:
        assert reference[table] == lite[table], table


def test_second_sync_changes_nothing(url, tmp_path, reference):
    cfg = write_config(tmp_path, url)
    assert run(cfg, "sync").returncode == 1
    first = pg_snapshot(url)
    second = run(cfg, "sync", "--format", "json")
    assert pg_snapshot(url) == first == reference
    doc = json.loads(second.stdout)  # stdout is one JSON document, nothing else
    items = next(s for s in doc["streams"] if s["stream"] == "items")
    assert items["requests"] == 1  # only the lookback page past the cursor is read again


# (harness checkpoint, PostgreSQL checkpoint): harness = after the Nth page read; PostgreSQL = around
# write_batch and commit (before BEGIN / after COMMIT) and each table's merge inside the transaction (6 per items batch).
KILL_POINTS = [(1, 0), (7, 0), (12, 0), (0, 1), (0, 3), (0, 6), (0, 28), (0, 45), (0, 74)]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at, pg_kill_at", KILL_POINTS)
def test_kill_at_any_point_then_resume_equals_uninterrupted(url, tmp_path, reference, kill_at, pg_kill_at):
    cfg = write_config(tmp_path, url)
    killed = run(cfg, "sync", "f", kill_at=kill_at, pg_kill_at=pg_kill_at)
    assert killed.returncode == -9, f"checkpoint {kill_at}/{pg_kill_at} was never reached: {killed.stderr}"
    conn = connect(url)
    try:
        met = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] if conn.execute(
            "SELECT to_regclass('quarantine')").fetchone()[0] else 0
    finally:
        conn.close()
    resumed = run(cfg, "sync", "f")
    # 1 while the resumed run still meets the malformed record, 0 once it was quarantined before the kill
    assert resumed.returncode == (0 if met else 1), resumed.stderr
    assert pg_snapshot(url) == reference


def test_a_kill_inside_a_transaction_leaves_nothing_of_that_batch(url, tmp_path):
    cfg = write_config(tmp_path, url)
    # checkpoints 1-6 = batch 1 (page 1); 7 = batch 2 before BEGIN, 8/9 = around its person_sources merge
    killed = run(cfg, "sync", "f", pg_kill_at=9)
    assert killed.returncode == -9, killed.stderr
    conn = connect(url)
    got = [conn.execute(f"SELECT count(*) FROM {t} WHERE source_object = 'item'").fetchone()[0]
           for t in ("raw_records", "person_sources", "events")]
    cursor = conn.execute("SELECT cursor FROM sync_state WHERE stream = 'items'").fetchone()
    conn.close()
    assert got == [25, 25, 25]  # page 1 only: page 2's raw records and person_sources rolled back
    assert json.loads(cursor[0]) == {"cursor": "2024-01-01T00:08:00Z"}  # page 1's cursor, committed with it


def test_reread_window_replaces_restated_days_exactly(url, tmp_path):
    cfg = write_config(tmp_path, url)
    run(cfg, "sync", "--stream", "daily")
    conn = connect(url)
    before = dict(conn.execute("SELECT event_date, quantity FROM events WHERE source_object = 'daily'").fetchall())
    conn.rollback()
    assert len(before) == 91 and set(before.values()) == {10.0}
    run(cfg, "sync", "--stream", "daily", env={"FAKE_VERSION": "5"})
    after = conn.execute("SELECT event_date, count(*), sum(quantity) FROM events WHERE source_object = 'daily' "
                         "GROUP BY event_date").fetchall()
    conn.close()
    assert len(after) == 91 and all(n == 1 for _, n, _ in after)
    assert {d: q for d, _, q in after if q != 10.0} == {"2024-03-29": 15.0, "2024-03-30": 15.0, "2024-03-31": 15.0}


def _start(cfg: Path, barrier: Path, *args: str) -> subprocess.Popen:
    e = _env({"PG_BARRIER": str(barrier), "PG_KILL_AT": "0"})
    return subprocess.Popen(_cmd(cfg, ("sync", *args), 0), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=e)


def _wait_for(pred, what: str, procs=(), timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        for p in procs:
            if p.poll() is not None:
                _, err = p.communicate()
                pytest.fail(f"a sync ended before {what}: exit {p.returncode}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def _parallel_syncs(url: str, tmp_path: Path) -> list[tuple[int, str]]:
    """Sync sources f and g in two processes that provably hold their locks at the same time."""
    cfg = write_config(tmp_path, url, {"f": {"records": 60}, "g": {"records": 60}})
    run(cfg, "sync", "--stream", "nothing")  # creates the warehouse, so both start on existing tables
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [_start(cfg, barrier, "f"), _start(cfg, barrier, "g")]
    try:
        # both hold their source locks at the same time (neither can finish before `go`)
        _wait_for(lambda: len(list(barrier.glob("*.locked"))) == 2, "both syncs held their locks", procs)
        (barrier / "go").touch()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    return [(p.returncode, err) for p, (_, err) in zip(procs, results)]


def test_different_sources_sync_in_parallel(url, tmp_path):
    for code, err in _parallel_syncs(url, tmp_path):
        assert code == 0, err
        assert "Traceback" not in err
    conn = connect(url)
    states = conn.execute("SELECT source_name, stream, cursor FROM sync_state ORDER BY 1, 2").fetchall()
    raw = conn.execute("SELECT count(*) FROM raw_records WHERE source_object = 'item'").fetchone()[0]
    conn.close()
    assert [s[:2] for s in states] == [("f", "daily"), ("f", "items"), ("g", "daily"), ("g", "items")]
    assert all(s[2] is not None for s in states)
    assert raw == 60  # the two fake sources share record ids: upserts, no duplicates


def _post_sync_takes_the_derive_lock() -> bool:
    import inspect

    import funnelsync.sync

    return "derive_lock" in inspect.getsource(funnelsync.sync.post_sync)


@pytest.mark.xfail(not _post_sync_takes_the_derive_lock(), strict=False,
                   reason="funnelsync/sync.py post_sync must rebuild under `wh.derive_lock()` on PostgreSQL: two "
                          "processes deleting and re-inserting people / kpi_values at once collide")
def test_parallel_syncs_rebuild_derived_tables_one_at_a_time(url, tmp_path):
    for code, err in _parallel_syncs(url, tmp_path):
        assert code == 0, err
        assert "warning" not in err, err  # both rebuilt the derived tables and KPIs
    conn = connect(url)
    dup = conn.execute("SELECT kpi, grain, period_start, count(*) FROM kpi_values GROUP BY kpi, grain, period_start, "
                       "channel, campaign_key, source_system, landing_path HAVING count(*) > 1").fetchall()
    people = conn.execute("SELECT count(*), count(DISTINCT person_key) FROM people").fetchone()
    conn.close()
    assert dup == []
    assert people[0] == people[1] > 0


def test_the_same_source_twice_gives_one_exit_75(url, tmp_path):
    cfg = write_config(tmp_path, url, {"f": {"records": 60}, "g": {"records": 60}})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    first = _start(cfg, barrier, "f")
    try:
        _wait_for(lambda: any(barrier.glob("*.locked")), "the first sync held its lock", [first])
        second = run(cfg, "sync", "f", "g")  # f is held: the run exits 75 before touching anything
        other = run(cfg, "sync", "g")        # g alone is free
        (barrier / "go").touch()
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert second.returncode == 75, second.stderr
    assert "another funnelsync sync is running for source 'f'" in second.stderr
    assert "Traceback" not in second.stderr
    assert other.returncode == 0, other.stderr
    assert first.returncode == 0, err
