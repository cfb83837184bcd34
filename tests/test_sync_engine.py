"""The run loop's guarantees, end to end through the CLI, with a deterministic fake connector (tests/harness.py):
kill -9 at any instant then resume == one uninterrupted sync; a second sync changes nothing; re-read windows
replace restated days; quarantine; the lock; exit codes; machine-clean JSON."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
VOLATILE = {"ingested_at", "fetched_at", "quarantined_at", "last_run_at", "last_success_at", "rows_written",
            "rows_quarantined"}
SKIP_TABLES = {"sync_runs"}


def write_config(tmp: Path, extra: str = "", **source) -> Path:
    opts = "".join(f"{k} = {json.dumps(v)}\n" for k, v in source.items())
    cfg = tmp / "funnelsync.toml"
    cfg.write_text(f'[warehouse]\nurl = "sqlite:///wh.db"\n\n[sources.f]\ntype = "fake"\nstart_date = "2024-01-01"\n'
                   f"{opts}{extra}")
    return cfg


def run(cfg: Path, *args: str, kill_at: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "FUNNELSYNC_NOW": "2024-04-01T00:00:00Z", **(env or {})}
    return subprocess.run([sys.executable, str(HERE / "harness.py"), str(kill_at), "--config", str(cfg), *args],
                          capture_output=True, text=True, env=e, timeout=120)


def snapshot(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    out = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        if table in SKIP_TABLES:
            continue
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in VOLATILE]
        out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)
    conn.close()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ref")
    cfg = write_config(tmp)
    done = run(cfg, "sync", "f")
    assert done.returncode == 1, done.stderr  # record 77 is quarantined on purpose
    return snapshot(tmp / "wh.db")


def test_uninterrupted_sync_loads_everything_and_quarantines_the_bad_record(reference):
    items = [r for r in reference["raw_records"] if r[1] == "item"]
    assert len(items) == 300
    assert len([e for e in reference["events"] if e[1] == "form_submitted"]) == 299
    (q,) = reference["quarantine"]
    assert q[:3] == ("f", "items", "r00077") and "malformed on purpose" in q[3]


def test_second_sync_changes_nothing(tmp_path, reference):
    cfg = write_config(tmp_path)
    run(cfg, "sync")
    first = snapshot(tmp_path / "wh.db")
    second_run = run(cfg, "sync", "--format", "json")
    assert snapshot(tmp_path / "wh.db") == first == reference
    doc = json.loads(second_run.stdout)  # stdout is one JSON document, nothing else
    items = next(s for s in doc["streams"] if s["stream"] == "items")
    assert items["requests"] == 1  # only the lookback page past the cursor is read again


# 12 pages x (page read, write_batch before/after, insert_events before/after, commit before/after) + the daily
# stream
KILL_POINTS = list(range(1, 64, 3))


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_kill_at_any_point_then_resume_equals_uninterrupted(tmp_path, reference, kill_at):
    cfg = write_config(tmp_path)
    killed = run(cfg, "sync", "f", kill_at=kill_at)
    assert killed.returncode == -9, f"checkpoint {kill_at} was never reached: {killed.stderr}"
    resumed = run(cfg, "sync", "f")
    # 1 while the resumed run still meets the malformed record, 0 once it was quarantined before the kill
    assert resumed.returncode in (0, 1), resumed.stderr
    assert snapshot(tmp_path / "wh.db") == reference


def test_reread_window_replaces_restated_days_exactly(tmp_path):
    cfg = write_config(tmp_path)
    run(cfg, "sync", "--stream", "daily")
    db = tmp_path / "wh.db"
    conn = sqlite3.connect(db)
    before = dict(conn.execute("SELECT event_date, quantity FROM events WHERE source_object = 'daily'"))
    assert len(before) == 91 and set(before.values()) == {10.0}
    run(cfg, "sync", "--stream", "daily", env={"FAKE_VERSION": "5"})
    after = conn.execute("SELECT event_date, count(*), sum(quantity) FROM events WHERE source_object = 'daily' "
                         "GROUP BY event_date").fetchall()
    assert len(after) == 91 and all(n == 1 for _, n, _ in after)  # no duplicates, no stale rows
    restated = {d: q for d, _, q in after if q != 10.0}
    assert restated == {"2024-03-29": 15.0, "2024-03-30": 15.0, "2024-03-31": 15.0}


def test_backfill_leaves_incremental_state_as_it_was(tmp_path):
    cfg = write_config(tmp_path)
    run(cfg, "sync", "--stream", "daily")
    conn = sqlite3.connect(tmp_path / "wh.db")
    state = conn.execute("SELECT cursor FROM sync_state WHERE stream = 'daily'").fetchone()
    done = run(cfg, "backfill", "f", "--start", "2024-01-10", "--end", "2024-01-12", "--stream", "daily")
    assert done.returncode == 0, done.stderr
    assert conn.execute("SELECT cursor FROM sync_state WHERE stream = 'daily'").fetchone() == state


def test_second_concurrent_sync_exits_75(tmp_path):
    cfg = write_config(tmp_path)
    run(cfg, "sync", "--stream", "daily")  # creates the warehouse
    sys.path.insert(0, str(HERE.parent))
    from warehouse.sqlite import SqliteWarehouse

    wh = SqliteWarehouse(tmp_path / "wh.db")
    with wh.lock():
        second = run(cfg, "sync")
    assert second.returncode == 75
    assert "another funnelsync sync is running" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize("fail, code", [("auth", 3), ("temporary", 75), ("quota", 75)])
def test_failures_exit_with_the_contract_code_and_keep_what_was_committed(tmp_path, fail, code):
    cfg = write_config(tmp_path, fail=fail)
    done = run(cfg, "sync", "--format", "json")
    assert done.returncode == code, done.stderr
    doc = json.loads(done.stdout)
    by_stream = {s["stream"]: s for s in doc["streams"]}
    assert by_stream["daily"]["status"] == "success"  # the other stream still completed
    assert by_stream["items"]["rows"] > 0  # pages before the failure were committed
    assert "Traceback" not in done.stderr


def test_quota_stop_then_next_run_finishes_with_nothing_lost_or_doubled(tmp_path, reference):
    cfg = write_config(tmp_path, fail="quota")
    assert run(cfg, "sync", "f").returncode == 75
    write_config(tmp_path)
    assert run(cfg, "sync", "f").returncode == 1  # the quarantined record
    assert snapshot(tmp_path / "wh.db") == reference


def test_unknown_source_is_a_usage_error(tmp_path):
    cfg = write_config(tmp_path)
    done = run(cfg, "sync", "nope")
    assert done.returncode == 2
    assert "no source named 'nope'" in done.stderr and "Traceback" not in done.stderr
